"""Message memories as units (``longterm/messages.py``): which messages, the context they
carry, the rewrite of the message before a job's window, dedup, and recall without repeats."""

from __future__ import annotations

from mnemo_memory.longterm.messages import message_units
from mnemo_memory.longterm.ranking import Ranked, select
from mnemo_memory.longterm.settings import LongTermSettings
from mnemo_memory.stores.thread_models import StoredMessage
from mnemo_memory.stores.vector import MemoryRecord


def thread(*pairs: tuple[str, str], provider: str = "anthropic") -> list[StoredMessage]:
    out = []
    for i, (user, assistant) in enumerate(pairs):
        out.append(StoredMessage(f"u{i}", "user", user, 1000 * (2 * i + 1)))
        out.append(
            StoredMessage(
                f"a{i}", "assistant", assistant, 1000 * (2 * i + 2), {"provider": provider}
            )
        )
    return out


def units(messages, window, **cfg):
    return message_units("ann", "th1", messages, window, LongTermSettings(**cfg))


CHAT = thread(
    ("I finally adopted a pet!", "Lovely! What kind of pet did you get?"),
    ("A beagle called Biscuit.", "Biscuit is a great name."),
    ("ok", "Anything else?"),
)


def test_a_user_message_is_kept_with_the_message_before_and_after_it():
    [unit] = units(CHAT, CHAT[2:4])
    assert unit.kind == "message" and unit.source_thread_id == "th1"
    assert unit.text == "Lovely! What kind of pet did you get?\nA beagle called Biscuit.\n" + (
        "Biscuit is a great name."
    )
    assert unit.source_message_ids == ("a0", "u1", "a1")
    assert unit.metadata == {"message_id": "u1", "role": "user"}
    assert unit.valid_from_ms == 3000  # the message's own time


def test_context_never_reaches_past_the_jobs_window_and_the_next_job_completes_it():
    msgs = units(CHAT, CHAT[0:2], message_memories="all")
    by_id = {u.metadata["message_id"]: u for u in msgs}
    assert by_id["a0"].source_message_ids == ("u0", "a0")  # u1 not said yet at this job
    later = {u.metadata["message_id"]: u for u in units(CHAT, CHAT[2:4], message_memories="all")}
    assert later["a0"].id == by_id["a0"].id  # the same memory, rewritten
    assert later["a0"].source_message_ids == ("u0", "a0", "u1")


def test_messages_without_a_content_word_and_assistant_messages_by_default_are_not_kept():
    assert units(CHAT, CHAT[4:6]) == []  # "ok", then an assistant message
    assert [u.metadata["role"] for u in units(CHAT, CHAT[0:6], message_memories="all")] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "assistant",
    ]
    assert units(CHAT, CHAT, message_memories="off") == []


def test_offline_replies_are_never_context():
    offline = thread(
        ("My dog's name is Biscuit.", "[offline model] No language model ..."), provider="offline"
    )
    [unit] = units(offline, offline)
    assert unit.text == "My dog's name is Biscuit." and unit.source_message_ids == ("u0",)


def test_a_message_said_twice_in_a_thread_is_one_memory_dated_by_the_newest():
    again = thread(("I live in Lisbon.", "Noted."), ("i live in lisbon", "Yes."))
    [unit] = units(again, again, message_context_before=0, message_context_after=0)
    assert unit.valid_from_ms == 3000 and unit.metadata["message_id"] == "u1"
    other = message_units("ann", "th2", again[:1], again[:1], LongTermSettings())
    assert other[0].id != unit.id  # another thread: its own memory


def test_context_is_clipped_and_the_unit_bounded():
    long = thread(("Tell me more about it.", "x" * 5000))
    [unit] = units(long, long, message_context_chars=100)
    assert len(unit.text.splitlines()[1]) == 100
    assert len(units(long, long, max_text_chars=50)[0].text) == 50


def ranked(rid: str, text: str, kind: str, *src: str) -> Ranked:
    rec = MemoryRecord(id=rid, user_id="ann", text=text, kind=kind, source_message_ids=src)
    return Ranked(rec, 1.0, 0.0, 0.0)


def test_recall_skips_repeats_and_windows_already_covered():
    results = [
        ranked("m1", "I live in Lisbon.", "message", "u1"),
        ranked("m2", "i live in lisbon", "message", "u7"),  # same words, other thread
        ranked("m3", "Lisbon is sunny\nI live in Lisbon.", "message", "a0", "u1"),
        ranked("m4", "Near the river\nLisbon is sunny", "message", "a0"),  # all held above
        ranked("f1", "User lives in Lisbon", "fact", "u1"),  # a fact is never dropped
        ranked("m5", "My dog is Biscuit.", "message", "u2"),
        ranked("f2", "User's mum is a nurse", "fact", "u9"),
        ranked("m6", "My mum works nights on a ward.", "message", "u9"),  # kept: its words
    ]
    assert [r.record.id for r in select(results, 10)] == ["m1", "m3", "f1", "m5", "f2", "m6"]
    assert [r.record.id for r in select(results, 2)] == ["m1", "m3"]
