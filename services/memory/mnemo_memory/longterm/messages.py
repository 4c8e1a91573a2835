"""Message memories: conversation messages kept verbatim in long-term memory, so recall
works for any phrasing even when no fact was extracted (agent-memory-server's "index all
messages").

Rules (``docs/long-term-memory.md``, "Message memories"):

* Which messages: ``LONGTERM__MESSAGE_MEMORIES`` — ``user`` (default), ``all`` (both
  roles), ``off``. Messages without a content word (``"ok"``, ``"thanks!"``, ``"?"``) are not kept.
* One memory per message, with the thread's neighbouring messages as context: up to
  ``LONGTERM__MESSAGE_CONTEXT_BEFORE`` messages before it and
  ``LONGTERM__MESSAGE_CONTEXT_AFTER`` after it, each clipped to
  ``LONGTERM__MESSAGE_CONTEXT_CHARS`` (a reply of the offline provider is never context:
  it echoes memory). Context never reaches past the job's newest message, and each job
  rewrites the memories of the messages just before its window with the context that
  followed them, so what is stored does not depend on when the worker runs.
* The text is the rendered unit (context lines, then the message); it is what recall
  returns and what the token budget counts. ``source_message_ids`` are the message and
  its context; ``metadata["message_id"]`` is the message itself.
* Deduplicated: the id is ``stable_id("m", user, thread, normalised message)``, so a job
  replayed, or a message said twice in one thread, is one memory (dated by its newest
  occurrence). Identical messages of different threads are collapsed at recall time.
* Dated (``valid_from_ms`` = the message's time), tied to its thread
  (``source_thread_id``): ``DeleteThread`` deletes the thread's message memories, and
  ``ForgetUser`` deletes them with the user's other memories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mnemo_memory.stores.vector import MemoryRecord, VectorFilter

from .settings import LongTermSettings
from .text import indexed_text, normalize, stable_id, tokenize

#: the message memory's kind (``MEMORY_KIND_MESSAGE``)
MESSAGE_KIND = "message"


#: words that make a message small talk, not something to remember
_SMALL_TALK = frozenset(
    [
        "ok",
        "okay",
        "k",
        "thanks",
        "thank",
        "thx",
        "ty",
        "hi",
        "hello",
        "hey",
        "bye",
        "yeah",
        "yep",
        "sure",
        "cool",
        "great",
        "nice",
        "lol",
    ]
)


def _content(text: str) -> bool:
    """Whether ``text`` holds a word worth remembering (not only stopwords/small talk)."""
    return any(t not in _SMALL_TALK for t in tokenize(text))


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _context(m: Any) -> bool:
    """Whether a neighbouring message is worth keeping as context: not empty, and not an
    offline-provider reply (it only echoes what memory already holds)."""
    return bool((m.content or "").strip()) and m.metadata.get("provider") != "offline"


def wanted(cfg: LongTermSettings, role: str) -> bool:
    """Whether a message of ``role`` is kept as a message memory."""
    mode = cfg.message_memories
    return mode == "all" or (mode == "user" and role == "user")


def message_units(
    user_id: str,
    thread_id: str,
    messages: Sequence[Any],
    window: Sequence[Any],
    cfg: LongTermSettings,
) -> list[MemoryRecord]:
    """The message memories of ``window`` (the job's messages, a contiguous slice of
    ``messages``, the thread oldest first) and of the ``message_context_after`` messages
    before it; context never reaches past the window's end."""
    if cfg.message_memories == "off" or not window:
        return []
    ids = [m.id for m in messages]
    if window[-1].id not in ids:
        return []
    end = ids.index(window[-1].id) + 1
    held = list(messages[:end])
    pos = {m.id: i for i, m in enumerate(held)}
    start = pos.get(window[0].id, end - len(window))
    # the messages just before the window get the context that came after them now
    targets = held[max(0, start - cfg.message_context_after) : end]
    limit = cfg.max_text_chars
    out: dict[str, MemoryRecord] = {}
    for m in targets:
        content = (m.content or "").strip()
        if m.id not in pos or not wanted(cfg, m.role) or not _content(content):
            continue
        i = pos[m.id]
        before = [c for c in held[max(0, i - cfg.message_context_before) : i] if _context(c)]
        after = [c for c in held[i + 1 : i + 1 + cfg.message_context_after] if _context(c)]
        ctx_chars = cfg.message_context_chars
        lines = [_clip(c.content, ctx_chars) for c in before]
        lines.append(_clip(content, limit))
        lines += [_clip(c.content, ctx_chars) for c in after]
        text = "\n".join(lines)
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        mid = stable_id("m", user_id, thread_id, normalize(content))
        when = int(m.created_at_ms or 0)
        out[mid] = MemoryRecord(
            id=mid,
            user_id=user_id,
            text=text,
            kind=MESSAGE_KIND,
            importance=5,
            created_at_ms=when,
            updated_at_ms=when,
            valid_from_ms=when,
            source_thread_id=thread_id,
            source_message_ids=tuple(c.id for c in (*before, m, *after)),
            metadata={"message_id": m.id, "role": str(m.role)},
        )
    return list(out.values())


async def write_messages(
    lt: Any, user_id: str, thread_id: str, messages: Sequence[Any], window: Sequence[Any]
) -> int:
    """Upsert the message memories of ``window``; returns how many were written. The
    chat path never waits for this: it runs in the worker's extract_facts job."""
    records = message_units(user_id, thread_id, messages, window, lt.cfg)
    if not records:
        return 0
    vectors = await lt.embedder.encode(
        [indexed_text(r.text, r.valid_from_ms, lt.cfg.date_prefix) for r in records]
    )
    await lt.store.upsert(records, vectors)
    lt.keyword_cache.invalidate(user_id)
    return len(records)


async def delete_thread_messages(lt: Any, user_id: str, thread_id: str) -> int:
    """Delete the message memories of one thread (``DeleteThread``); returns the count."""
    found = await lt.store.all_matching(
        VectorFilter(
            user_id=user_id, kinds=(MESSAGE_KIND,), thread_id=thread_id, include_superseded=True
        )
    )
    if not found:
        return 0
    deleted = int(await lt.store.delete([r.id for r in found]))
    lt.keyword_cache.invalidate(user_id)
    return deleted
