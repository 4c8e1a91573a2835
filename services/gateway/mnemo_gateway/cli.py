"""``mnemo``: talk to a running gateway from the terminal.

    mnemo chat "I moved to Lisbon last week"      # one turn, streamed
    mnemo chat                                    # interactive; Ctrl-D to leave
    mnemo memories ls [--query TEXT]              # what is remembered about you
    mnemo memories forget MEMORY_ID               # forget one memory
    mnemo memories forget --everything            # erase every trace (prints the receipt)
    mnemo threads ls

``MNEMO_URL`` (default http://127.0.0.1:8000), ``MNEMO_API_KEY`` (key or JWT) and
``MNEMO_USER`` (default: the credential's user, or the gateway's default user) configure it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

EXIT_ERROR = 1


class CliError(Exception):
    pass


class Gateway:
    def __init__(self, url: str, key: str | None, user: str) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=120)
        self.user = user

    def path(self, rest: str) -> str:
        return f"/v1/users/{quote(self.user, safe='')}{rest}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the gateway at {self.http.base_url}: {exc}") from None
        if resp.status_code >= 400:
            raise CliError(_error_text(resp))
        return resp.json() if resp.content else None

    def chat_stream(self, prompt: str, thread_id: str | None) -> Iterator[tuple[str, Any]]:
        body: dict[str, Any] = {"prompt": prompt, "stream": True, "thread_id": thread_id}
        if self.user != "me":
            body["user_id"] = self.user
        try:
            with self.http.stream("POST", "/v1/chat", json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise CliError(_error_text(resp))
                if resp.headers.get("x-mnemo-memory") == "degraded":
                    yield "degraded", None
                event = "message"
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        yield event, json.loads(line[6:])
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the gateway at {self.http.base_url}: {exc}") from None


def _error_text(resp: httpx.Response) -> str:
    try:
        err = resp.json()["error"]
        return f"{resp.status_code} {err.get('code')}: {err.get('message')}"
    except (ValueError, KeyError, TypeError):
        return f"{resp.status_code}: {resp.text[:200]}"


def _say(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def one_turn(gw: Gateway, prompt: str, thread_id: str | None) -> str | None:
    for event, doc in gw.chat_stream(prompt, thread_id):
        if event == "degraded":
            sys.stderr.write("(memory unavailable: answering without memory)\n")
        elif event == "start":
            thread_id = doc["thread_id"]
        elif event == "delta":
            _say(doc["text"], end="")
        elif event == "done":
            _say()
            if doc.get("memory") == "degraded" and not doc.get("committed", True):
                sys.stderr.write("(this turn was not stored in memory)\n")
        elif event == "error":
            raise CliError(doc["error"]["message"])
    return thread_id


def cmd_chat(gw: Gateway, args: argparse.Namespace) -> int:
    thread_id = args.thread
    if args.message:
        thread_id = one_turn(gw, " ".join(args.message), thread_id)
        sys.stderr.write(f"(thread {thread_id})\n")
        return 0
    sys.stderr.write("mnemo chat — Ctrl-D to leave\n")
    while True:
        try:
            prompt = input("you> ").strip()
        except EOFError:
            _say()
            return 0
        if prompt:
            _say("mnemo> ", end="")
            thread_id = one_turn(gw, prompt, thread_id)


def cmd_memories_ls(gw: Gateway, args: argparse.Namespace) -> int:
    if args.query:
        data = gw.call("GET", gw.path("/memories/search"), params={"q": args.query})
        items = [(r["memory"], f"{r['score']:.2f}") for r in data["results"]]
    else:
        data = gw.call("GET", gw.path("/memories"))
        items = [(m, m["kind"]) for m in data["memories"]]
    for mem, tag in items:
        _say(f"{mem['id']}  [{tag}]  {mem['text']}")
    prefs = gw.call("GET", gw.path("/preferences"))["values"]
    for key, value in sorted(prefs.items()):
        _say(f"preference  {key} = {value}")
    if not items and not prefs:
        _say("(nothing remembered)")
    return 0


def cmd_memories_forget(gw: Gateway, args: argparse.Namespace) -> int:
    if args.everything:
        receipt = gw.call("DELETE", gw.path(""))
        _say(json.dumps(receipt, indent=2))
        return 0
    if not args.memory_id:
        raise CliError("name a memory id (see `mnemo memories ls`) or pass --everything")
    for memory_id in args.memory_id:
        gw.call("DELETE", gw.path(f"/memories/{quote(memory_id, safe='')}"))
        _say(f"forgot {memory_id}")
    return 0


def cmd_threads_ls(gw: Gateway, args: argparse.Namespace) -> int:
    for t in gw.call("GET", gw.path("/threads"))["threads"]:
        _say(f"{t['thread_id']}  {t['message_count']:>3} messages  {t['title']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mnemo", description="Chat with memory from the terminal.")
    p.add_argument("--url", default=os.environ.get("MNEMO_URL", "http://127.0.0.1:8000"))
    p.add_argument("--key", default=os.environ.get("MNEMO_API_KEY"), help="API key or JWT")
    p.add_argument("--user", default=os.environ.get("MNEMO_USER", "me"))
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
    forget.add_argument("--everything", action="store_true", help="erase every trace of you")
    forget.set_defaults(func=cmd_memories_forget)
    threads = sub.add_parser("threads", help="your conversations")
    tsub = threads.add_subparsers(dest="action", required=True)
    tsub.add_parser("ls").set_defaults(func=cmd_threads_ls)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    gw = Gateway(args.url, args.key, args.user)
    try:
        return int(args.func(gw, args))
    except CliError as exc:
        sys.stderr.write(f"mnemo: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
