"""Writing facts and episodes: deterministic ids, merge of restatements, supersession of
contradictions.

Rules (``docs/long-term-memory.md``):

* **Replay**: a candidate's id is ``fact_id(user, normalised text, thread, source ids)``.
  If that id exists, or an existing fact lists it in ``metadata["merged_ids"]``, the
  candidate was written before and nothing happens.
* **Merge**: the nearest valid fact of the user with cosine ≥ ``LONGTERM__MERGE_SIMILARITY``
  and no conflicting slot value is the same fact restated: it gets ``updated_at_ms = now``,
  ``importance = max(old, new)`` (+1 for a restatement, capped at 10), the new source
  message ids, and the candidate id in ``merged_ids``.
* **Supersede**: a valid fact with the same slot (``slot_of``: "my X is ...", "lives in",
  "works at"...) but a different normalised text, or the fact the LLM named in
  ``replaces``, gets ``valid_to_ms = now`` and ``superseded_by = new id``; it stays in the
  store (history) and is excluded from default search.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from mnemo_memory.stores.vector import MemoryRecord, VectorFilter

from .text import fact_id, indexed_text, normalize, slot_of, stable_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CandidateFact:
    """A fact proposed by an extractor (LLM, rule-based, or an evaluation stand-in)."""

    text: str
    kind: str = "fact"
    importance: int = 5
    source_message_ids: tuple[str, ...] = ()
    valid_from_ms: int = 0
    slot: str = ""  # "" = derive with slot_of()
    replaces: str = ""  # id of an existing fact this one replaces (LLM schema)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class WriteReport:
    added: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "merged": len(self.merged),
            "superseded": len(self.superseded),
            "skipped": len(self.skipped),
        }


def _merged_ids(rec: MemoryRecord) -> set[str]:
    return {x for x in rec.metadata.get("merged_ids", "").split(",") if x}


class FactWriter:
    """Applies the replay/merge/supersede rules against a vector store."""

    def __init__(self, lt: Any) -> None:
        self.lt = lt  # LongTermMemory: store, embedder, cfg

    async def write(
        self, user_id: str, thread_id: str, candidates: list[CandidateFact], now_ms: int
    ) -> WriteReport:
        report = WriteReport()
        if not candidates:
            return report
        cfg = self.lt.cfg
        store = self.lt.store
        texts = [
            indexed_text(c.text, c.valid_from_ms or now_ms, cfg.date_prefix) for c in candidates
        ]
        vectors = await self.lt.embedder.encode(texts)
        for cand, vec in zip(candidates, vectors, strict=True):
            cid = fact_id(user_id, cand.text, thread_id, tuple(cand.source_message_ids))
            if await store.get([cid]):
                report.skipped.append(cid)
                continue
            flt = VectorFilter(user_id=user_id, kinds=("fact", "preference", "event"))
            hits = await store.query(vec, flt, 20)
            if any(cid in _merged_ids(h.record) for h in hits):
                report.skipped.append(cid)
                continue
            slot = cand.slot or slot_of(cand.text)
            norm = normalize(cand.text)
            conflicting = [
                h.record
                for h in hits
                if (h.record.id == cand.replaces)
                or (
                    slot
                    and h.record.slot == slot
                    and normalize(h.record.text) != norm
                    and h.similarity >= cfg.contradiction_similarity
                )
            ]
            if cand.replaces and not any(r.id == cand.replaces for r in conflicting):
                named = await store.get([cand.replaces])
                conflicting += [r for r in named if r.user_id == user_id and not r.valid_to_ms]
            same = next(
                (
                    h
                    for h in hits
                    if h.similarity >= cfg.merge_similarity
                    and h.record.kind == cand.kind
                    and h.record not in conflicting
                    and (not slot or not h.record.slot or h.record.slot == slot)
                ),
                None,
            )
            if same is not None and not conflicting:
                old = same.record
                merged = old.with_changes(
                    updated_at_ms=now_ms,
                    importance=min(10, max(old.importance, cand.importance) + 1),
                    source_message_ids=tuple(
                        dict.fromkeys((*old.source_message_ids, *cand.source_message_ids))
                    ),
                    metadata={
                        **old.metadata,
                        "merged_ids": ",".join(sorted(_merged_ids(old) | {cid})),
                    },
                )
                old_vec = await self.lt.embedder.encode(
                    [indexed_text(old.text, old.valid_from_ms, cfg.date_prefix)]
                )
                await store.upsert([merged], old_vec)
                report.merged.append(old.id)
                continue
            record = MemoryRecord(
                id=cid,
                user_id=user_id,
                text=cand.text.strip(),
                kind=cand.kind,
                importance=max(1, min(10, cand.importance)),
                created_at_ms=now_ms,
                updated_at_ms=now_ms,
                valid_from_ms=cand.valid_from_ms or now_ms,
                source_thread_id=thread_id,
                source_message_ids=tuple(cand.source_message_ids),
                slot=slot,
                metadata=dict(cand.metadata),
            )
            # the new fact first: a crash in between leaves both valid, never neither
            await store.upsert([record], vec[None, :])
            report.added.append(cid)
            if conflicting:
                await self._supersede(conflicting, cid, now_ms)
                report.superseded.extend(r.id for r in conflicting)
        self.lt.keyword_cache.invalidate(user_id)
        log.info(
            "facts written", extra={"user_id": user_id, "thread_id": thread_id, **report.as_dict()}
        )
        return report

    async def _supersede(self, olds: list[MemoryRecord], new_id: str, now_ms: int) -> None:
        cfg = self.lt.cfg
        updated = [
            o.with_changes(valid_to_ms=now_ms, superseded_by=new_id, updated_at_ms=now_ms)
            for o in olds
        ]
        vecs = await self.lt.embedder.encode(
            [indexed_text(o.text, o.valid_from_ms, cfg.date_prefix) for o in olds]
        )
        await self.lt.store.upsert(updated, vecs)

    async def write_episode(
        self,
        user_id: str,
        thread_id: str,
        text: str,
        message_ids: tuple[str, ...],
        valid_from_ms: int,
        now_ms: int,
    ) -> tuple[str, bool]:
        """Store a thread's summary as an episode; (id, created). The id depends on the
        thread and its newest message, so a replay rewrites nothing new."""
        last = message_ids[-1] if message_ids else ""
        eid = stable_id("e", user_id, thread_id, last)
        if await self.lt.store.get([eid]):
            return eid, False
        record = MemoryRecord(
            id=eid,
            user_id=user_id,
            text=text.strip(),
            kind="episode",
            importance=5,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
            valid_from_ms=valid_from_ms or now_ms,
            source_thread_id=thread_id,
            source_message_ids=message_ids,
        )
        vec = await self.lt.embedder.encode(
            [indexed_text(record.text, record.valid_from_ms, self.lt.cfg.date_prefix)]
        )
        await self.lt.store.upsert([record], vec)
        self.lt.keyword_cache.invalidate(user_id)
        return eid, True
