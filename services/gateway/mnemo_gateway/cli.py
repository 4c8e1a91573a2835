"""``mnemo``: talk to a running gateway from the terminal (through :mod:`mnemo_client`).

    mnemo chat "I moved to Lisbon last week"      # one turn, streamed
    mnemo chat                                    # interactive; Ctrl-D to leave
    mnemo memories ls [--query TEXT]              # what is remembered about you
    mnemo memories forget MEMORY_ID               # forget one memory
    mnemo memories forget --everything [--yes]    # erase every trace (asks first)
    mnemo threads ls

``--url`` / ``MNEMO_URL`` (default http://127.0.0.1:8000), ``--key`` / ``MNEMO_API_KEY`` (key
or JWT) and ``--user`` / ``MNEMO_USER`` (default: the credential's user, or the gateway's
default user) configure it.

``forget --everything`` without a named user on a gateway in auth ``none`` is refused: it
would erase the default user (``local``), whom every client that names no user shares.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from mnemo_client import DEFAULT_URL, ME, GatewayUnreachable, MnemoClient, MnemoError

EXIT_ERROR = 1


class CliError(Exception):
    pass


def _say(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def _note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def one_turn(mnemo: MnemoClient, prompt: str, thread_id: str | None, prefix: str = "") -> str:
    """Stream one answer to stdout (after ``prefix``); returns the thread id."""
    started = False
    for event in mnemo.chat_stream(prompt, thread_id=thread_id):
        doc = event["data"]
        if event["event"] == "start":
            thread_id = doc["thread_id"]
            if doc.get("memory") == "degraded":
                _note("(memory unavailable: answering without memory)")
            _say(prefix, end="")
            started = True
        elif event["event"] == "delta":
            _say(doc["text"], end="")
        elif event["event"] == "done":
            _say()
            if doc.get("memory") == "degraded" and not doc.get("committed", True):
                _note("(this turn was not stored in memory)")
    if not started:  # pragma: no cover - the gateway always starts with `start`
        raise CliError("the gateway ended the answer before it began")
    assert thread_id is not None
    return thread_id


def cmd_chat(mnemo: MnemoClient, args: argparse.Namespace) -> int:
    thread_id = args.thread
    if args.message:
        thread_id = one_turn(mnemo, " ".join(args.message), thread_id)
        _note(f"(thread {thread_id})")
        return 0
    interactive = sys.stdin.isatty()
    _note("mnemo chat — Ctrl-D to leave")
    while True:
        try:
            prompt = input("you> ").strip()
        except EOFError:
            if interactive:
                _say()
            return 0
        if not interactive:
            _say(prompt)  # a terminal echoes what was typed; piped input is not echoed
        if prompt:
            thread_id = one_turn(mnemo, prompt, thread_id, prefix="mnemo> ")


def cmd_memories_ls(mnemo: MnemoClient, args: argparse.Namespace) -> int:
    if args.query:
        hits = mnemo.search_memories(args.query)["results"]
        items = [(h["memory"], f"{h['score']:.2f}") for h in hits]
    else:
        items = [(m, m["kind"]) for m in mnemo.list_memories()["memories"]]
    for mem, tag in items:
        _say(f"{mem['id']}  [{tag}]  {mem['text']}")
    prefs = mnemo.get_preferences()
    for key, value in sorted(prefs.items()):
        _say(f"preference  {key} = {value}")
    if not items and not prefs:
        _say("(nothing remembered)")
    return 0


def _erase_target(mnemo: MnemoClient) -> str:
    """The user ``--everything`` would erase, refusing the shared default user unnamed."""
    me = mnemo.me()
    if mnemo.user != ME:
        return mnemo.user
    if me["user_id"]:
        return me["user_id"]
    if me["auth_mode"] == "none":
        shared = me["default_user_id"] or "the default user"
        raise CliError(
            f"refusing to erase without --user: this gateway (auth none) would erase "
            f"{shared!r}, the user every client that names no user shares; "
            f"name the user to erase: mnemo --user {me['default_user_id'] or 'NAME'} "
            "memories forget --everything"
        )
    raise CliError("this credential acts for several users: name one with --user")


def cmd_memories_forget(mnemo: MnemoClient, args: argparse.Namespace) -> int:
    if args.everything:
        if args.memory_id:
            raise CliError("pass memory ids or --everything, not both")
        user = _erase_target(mnemo)
        if not args.yes:
            sys.stderr.write(
                f"Erase every memory, thread and preference of user {user!r} at {mnemo.url}? "
                "This cannot be undone. Type 'yes' to confirm: "
            )
            sys.stderr.flush()
            try:
                answer = input()
            except EOFError:
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                raise CliError("not erased (confirm with 'yes', or pass --yes)")
        _say(json.dumps(mnemo.erase(user=user), indent=2))
        return 0
    if not args.memory_id:
        raise CliError("name a memory id (see `mnemo memories ls`) or pass --everything")
    for memory_id in args.memory_id:
        mnemo.delete_memory(memory_id)
        _say(f"forgot {memory_id}")
    return 0


def cmd_threads_ls(mnemo: MnemoClient, args: argparse.Namespace) -> int:
    for t in mnemo.list_threads()["threads"]:
        _say(f"{t['thread_id']}  {t['message_count']:>3} messages  {t['title']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mnemo", description="Chat with memory from the terminal.")
    p.add_argument(
        "--url",
        default=os.environ.get("MNEMO_URL") or DEFAULT_URL,
        help=f"the gateway (env MNEMO_URL; default {DEFAULT_URL})",
    )
    p.add_argument("--key", default=os.environ.get("MNEMO_API_KEY"), help="API key or JWT")
    p.add_argument(
        "--user",
        default=os.environ.get("MNEMO_USER") or ME,
        help="whose memory (env MNEMO_USER; default: the credential's user)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="chat (one message, or interactive)")
    chat.add_argument("--thread", help="continue this thread")
    chat.add_argument("message", nargs="*")
    chat.set_defaults(func=cmd_chat)
    mem = sub.add_parser("memories", help="see and forget what is remembered")
    msub = mem.add_subparsers(dest="action", required=True)
    ls = msub.add_parser("ls", help="list memories and preferences")
    ls.add_argument("--query", "-q", help="search instead of listing")
    ls.set_defaults(func=cmd_memories_ls)
    forget = msub.add_parser("forget", help="forget memories, or everything")
    forget.add_argument("memory_id", nargs="*")
    forget.add_argument("--everything", action="store_true", help="erase every trace of the user")
    forget.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    forget.set_defaults(func=cmd_memories_forget)
    threads = sub.add_parser("threads", help="your conversations")
    tsub = threads.add_subparsers(dest="action", required=True)
    tsub.add_parser("ls").set_defaults(func=cmd_threads_ls)
    return p


def _unreachable(exc: GatewayUnreachable) -> str:
    return (
        f"cannot reach the gateway at {exc.url} ({exc.reason}).\n"
        "  Is it running? `make run` starts one on http://127.0.0.1:8000.\n"
        "  Elsewhere: pass --url URL or set MNEMO_URL=URL."
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with MnemoClient(args.url, api_key=args.key or "", user=args.user) as mnemo:
            return int(args.func(mnemo, args))
    except GatewayUnreachable as exc:
        _note(f"mnemo: {_unreachable(exc)}")
    except (CliError, MnemoError) as exc:
        _note(f"mnemo: {exc}")
    except KeyboardInterrupt:
        return 130
    return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
