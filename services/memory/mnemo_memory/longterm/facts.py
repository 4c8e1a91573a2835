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

import numpy as np

from mnemo_memory.stores.vector import MemoryRecord, VectorFilter, VectorHit

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
    skipped: list[str] = field(default_factory=list)  # ids of the facts already holding them

    def as_dict(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "merged": len(self.merged),
            "superseded": len(self.superseded),
            "skipped": len(self.skipped),
        }


def _merged_ids(rec: MemoryRecord) -> set[str]:
    return {x for x in rec.metadata.get("merged_ids", "").split(",") if x}


def _merged(old: MemoryRecord, cand: CandidateFact, cid: str, now_ms: int) -> MemoryRecord:
    """``old`` after absorbing a restatement (see the module docstring)."""
    return old.with_changes(
        updated_at_ms=now_ms,
        importance=min(10, max(old.importance, cand.importance) + 1),
        source_message_ids=tuple(
            dict.fromkeys((*old.source_message_ids, *cand.source_message_ids))
        ),
        metadata={**old.metadata, "merged_ids": ",".join(sorted(_merged_ids(old) | {cid}))},
    )


class FactWriter:
    """Applies the replay/merge/supersede rules against a vector store."""

    def __init__(self, lt: Any) -> None:
        self.lt = lt  # LongTermMemory: store, embedder, cfg, keyword_cache

    async def write(
        self, user_id: str, thread_id: str, candidates: list[CandidateFact], now_ms: int
    ) -> WriteReport:
        """Apply the rules to one job's candidates: one get, one batched KNN, one upsert
        (plus re-embedding of the merged/superseded facts)."""
        report = WriteReport()
        if not candidates:
            return report
        cfg = self.lt.cfg
        store = self.lt.store
        texts = [
            indexed_text(c.text, c.valid_from_ms or now_ms, cfg.date_prefix) for c in candidates
        ]
        vectors = await self.lt.embedder.encode(texts)
        ids = [fact_id(user_id, c.text, thread_id, tuple(c.source_message_ids)) for c in candidates]
        stored = {r.id for r in await store.get(list(dict.fromkeys(ids)))}
        todo = [i for i, cid in enumerate(ids) if cid not in stored]
        report.skipped.extend(cid for cid in ids if cid in stored)
        flt = VectorFilter(user_id=user_id, kinds=("fact", "preference", "event"))
        hits_per = await store.query_many(vectors[todo], flt, 20) if todo else []
        new_records: dict[str, tuple[MemoryRecord, np.ndarray]] = {}
        changed: dict[str, MemoryRecord] = {}  # merged or superseded stored facts
        for i, raw_hits in zip(todo, hits_per, strict=True):
            cand, vec, cid = candidates[i], vectors[i], ids[i]
            hits = [VectorHit(changed.get(h.record.id, h.record), h.similarity) for h in raw_hits]
            if cid in new_records:
                report.skipped.append(cid)
                continue
            holder = next((h.record.id for h in hits if cid in _merged_ids(h.record)), "")
            if holder:  # restated before and merged there: name the fact that holds it
                report.skipped.append(holder)
                continue
            slot = cand.slot or slot_of(cand.text)
            conflicting = await self._conflicting(user_id, cand, slot, hits)
            if not conflicting:
                target = self._merge_target(cand, vec, slot, hits, new_records)
                if target is not None:
                    merged = _merged(target, cand, cid, now_ms)
                    if target.id in new_records:
                        new_records[target.id] = (merged, new_records[target.id][1])
                    else:
                        changed[target.id] = merged
                        report.merged.append(target.id)
                    continue
            new_records[cid] = (
                MemoryRecord(
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
                ),
                vec,
            )
            report.added.append(cid)
            for old in conflicting:
                changed[old.id] = old.with_changes(
                    valid_to_ms=now_ms, superseded_by=cid, updated_at_ms=now_ms
                )
                report.superseded.append(old.id)
        # new facts first: a crash in between leaves both valid, never neither
        if new_records:
            records = [r for r, _ in new_records.values()]
            await store.upsert(records, np.stack([v for _, v in new_records.values()]))
        if changed:
            olds = list(changed.values())
            vecs = await self.lt.embedder.encode(
                [indexed_text(o.text, o.valid_from_ms, cfg.date_prefix) for o in olds]
            )
            await store.upsert(olds, vecs)
        self.lt.keyword_cache.invalidate(user_id)
        log.info(
            "facts written",
            extra={"user_id": user_id, "thread_id": thread_id, **report.as_dict()},
        )
        return report

    async def _conflicting(
        self, user_id: str, cand: CandidateFact, slot: str, hits: list[VectorHit]
    ) -> list[MemoryRecord]:
        """Valid facts ``cand`` contradicts: same slot, other value; or named by the LLM."""
        norm = normalize(cand.text)
        found = [
            h.record
            for h in hits
            if h.record.valid_to_ms == 0
            and (
                h.record.id == cand.replaces
                or (
                    slot
                    and h.record.slot == slot
                    and normalize(h.record.text) != norm
                    and h.similarity >= self.lt.cfg.contradiction_similarity
                )
            )
        ]
        if cand.replaces and not any(r.id == cand.replaces for r in found):
            named = await self.lt.store.get([cand.replaces])
            found += [r for r in named if r.user_id == user_id and not r.valid_to_ms]
        return found

    def _merge_target(
        self,
        cand: CandidateFact,
        vec: np.ndarray,
        slot: str,
        hits: list[VectorHit],
        pending: dict[str, tuple[MemoryRecord, np.ndarray]],
    ) -> MemoryRecord | None:
        """The valid fact (stored, or new in this batch) that ``cand`` restates."""
        threshold = self.lt.cfg.merge_similarity

        def compatible(r: MemoryRecord) -> bool:
            return (
                r.kind == cand.kind
                and r.valid_to_ms == 0
                and (not slot or not r.slot or r.slot == slot)
            )

        for rec, pending_vec in pending.values():
            if compatible(rec) and float(pending_vec @ vec) >= threshold:
                return rec
        for h in hits:
            if h.similarity >= threshold and compatible(h.record):
                return h.record
        return None

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
