"""Writing facts and episodes: deterministic ids, merge of restatements, supersession of
contradictions and updates.

Rules (``docs/long-term-memory.md``). Every rule compares the candidate with *all* the
user's valid facts, read with their vectors by metadata filter and scored exactly
(``VectorStore.candidates``; ADR 0016): an ANN index with a user post-filter misses some of
a user's records when other users hold near-identical ones.

* **Replay**: a candidate's id is ``fact_id(user, normalised text, thread, source ids)``.
  If that id exists, or an existing fact lists it in ``metadata["merged_ids"]``, the
  candidate was written before and nothing happens.
* **Supersede**: a valid fact with the same slot (``slot_of``: "my X is ...", "lives in",
  "works at"...) but a different normalised text; a fact or preference that says the same
  about the same subject with a changed value or polarity (``values.is_update``: "... on
  3 May" → "... on 5 May", "eats meat" → "does not eat meat") at cosine ≥
  ``LONGTERM__UPDATE_SIMILARITY``; or the fact the LLM named in ``replaces``: it gets
  ``valid_to_ms = now`` and ``superseded_by = new id``, stays in the store (history) and is
  excluded from default search.
* **Merge**: otherwise, the nearest valid fact of the same kind with cosine ≥
  ``LONGTERM__MERGE_SIMILARITY``, no conflicting slot, and to which the candidate adds no
  value, name or negation (``values.adds_detail``) is the same fact restated: it gets
  ``updated_at_ms = now``, ``importance = max(old, new)`` (+1 for a restatement, capped at
  10), the new source message ids, and the candidate id in ``merged_ids``. A candidate that
  adds a detail is never merged away: it supersedes (above) or is added beside.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mnemo_memory.stores.vector import MemoryRecord, VectorFilter, VectorHit
from mnemo_memory.stores.vector.base import exact_similarities, owns

from .text import fact_id, indexed_text, normalize, slot_of, stable_id
from .values import adds_detail, is_update, shape

log = logging.getLogger(__name__)

#: kinds that take part in dedup and supersede (episodes and other kinds never do)
FACT_KINDS = ("fact", "preference", "event")
#: kinds a changed value supersedes; events are occurrences, additive unless a slot or the
#: LLM's ``replaces`` says otherwise ("went running on Monday", "... on Tuesday")
UPDATABLE_KINDS = ("fact", "preference")


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
        """Apply the rules to one job's candidates: one get, one exact read of the user's
        valid facts with their vectors (no ANN: ADR 0016), one upsert of the new facts and
        one field update of the facts they merge into or supersede (vectors kept)."""
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
        if not todo:
            return report
        flt = VectorFilter(user_id=user_id, kinds=FACT_KINDS)
        pool, pool_vecs = await store.candidates(flt)
        sims = exact_similarities(vectors[todo], pool_vecs)
        holders = {mid: r.id for r in pool for mid in _merged_ids(r)}
        floor = min(cfg.contradiction_similarity, cfg.update_similarity, cfg.merge_similarity)
        new_records: dict[str, tuple[MemoryRecord, np.ndarray]] = {}
        changed: dict[str, MemoryRecord] = {}  # merged or superseded stored facts
        for row, i in enumerate(todo):
            cand, vec, cid = candidates[i], vectors[i], ids[i]
            if cid in new_records:
                report.skipped.append(cid)
                continue
            if cid in holders:  # restated before and merged there: name the fact that holds it
                report.skipped.append(holders[cid])
                continue
            hits = [
                VectorHit(changed.get(pool[j].id, pool[j]), float(sims[row, j]))
                for j in np.flatnonzero(sims[row] >= floor)
            ]
            hits += [VectorHit(r, float(v @ vec)) for r, v in new_records.values()]
            hits.sort(key=lambda h: -h.similarity)
            slot = cand.slot or slot_of(cand.text)
            conflicting = await self._conflicting(user_id, cand, slot, hits)
            if not conflicting:
                target = self._merge_target(cand, slot, hits)
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
                done = old.with_changes(valid_to_ms=now_ms, superseded_by=cid, updated_at_ms=now_ms)
                if old.id in new_records:  # superseded within this batch
                    new_records[old.id] = (done, new_records[old.id][1])
                else:
                    changed[old.id] = done
                report.superseded.append(old.id)
        # new facts first: a crash in between leaves both valid, never neither; a changed
        # fact keeps its stored vector (its text and date are unchanged)
        if new_records:
            await store.upsert(
                [r for r, _ in new_records.values()],
                np.stack([v for _, v in new_records.values()]),
            )
        if changed:
            await store.update_fields(list(changed.values()))
        self.lt.keyword_cache.invalidate(user_id)
        log.info(
            "facts written",
            extra={"user_id": user_id, "thread_id": thread_id, **report.as_dict()},
        )
        return report

    async def _conflicting(
        self, user_id: str, cand: CandidateFact, slot: str, hits: list[VectorHit]
    ) -> list[MemoryRecord]:
        """Valid facts ``cand`` contradicts: the same slot with another value, the same
        statement with a changed value or polarity (``values.is_update``), or the fact the
        LLM named in ``replaces``."""
        cfg = self.lt.cfg
        norm = normalize(cand.text)
        new_shape = shape(cand.text)

        def contradicts(h: VectorHit) -> bool:
            r = h.record
            if r.valid_to_ms:
                return False
            if r.id == cand.replaces:
                return True
            if normalize(r.text) == norm:
                return False
            if slot and r.slot == slot and h.similarity >= cfg.contradiction_similarity:
                return True
            return (
                cand.kind in UPDATABLE_KINDS
                and r.kind in UPDATABLE_KINDS
                and h.similarity >= cfg.update_similarity
                and is_update(new_shape, shape(r.text))
            )

        found = [h.record for h in hits if contradicts(h)]
        if cand.replaces and not any(r.id == cand.replaces for r in found):
            named = await self.lt.store.get([cand.replaces])
            found += [r for r in named if owns(r, user_id) and not r.valid_to_ms]
        return found

    def _merge_target(
        self, cand: CandidateFact, slot: str, hits: list[VectorHit]
    ) -> MemoryRecord | None:
        """The valid fact (stored, or new in this batch) that ``cand`` restates: close
        enough, and ``cand`` adds no value, name or negation it lacks (that would be
        merged away)."""
        threshold = self.lt.cfg.merge_similarity
        new_shape = shape(cand.text)
        for h in hits:
            r = h.record
            if (
                h.similarity >= threshold
                and r.kind == cand.kind
                and r.valid_to_ms == 0
                and (not slot or not r.slot or r.slot == slot)
                and not adds_detail(new_shape, shape(r.text))
            ):
                return r
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
