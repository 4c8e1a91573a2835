"""Thread excerpts: the results of one conversation folded into one result, so the top k
spans k conversations and the token budget, not the result count, bounds how much of
each one comes back (ADR 0025, ``docs/long-term-memory.md``, "Thread excerpts").

Rules (``LONGTERM__GROUP_BY_THREAD``, on by default):

* The fused ranking is walked best first over every candidate the vector and keyword
  lists brought (up to twice ``LONGTERM__VECTOR_CANDIDATES``, all read already), after
  the repeat rules of ``ranking.select``. A memory with a source thread
  joins the result of that thread when there is one; otherwise it opens a new result
  while fewer than ``top_k`` are open (a memory without a thread, e.g. one added with
  AddMemory, is always a result of its own). A memory that would not fit the budget is
  passed over for the next.
* A memory joins an excerpt only when it is relevant in its own right: cosine similarity
  to the query at least ``LONGTERM__GROUP_MIN_SIMILARITY`` (0.4) or a keyword score at
  least ``LONGTERM__GROUP_MIN_KEYWORD`` (0.4 of the query's best BM25 score). The rest
  of its thread never rides along because the budget has room: a memory that does not
  qualify is a result of its own while fewer than ``top_k`` are open, as without
  grouping.
* The budget is the request's ``token_budget``, or ``LONGTERM__GROUP_TOKEN_BUDGET`` when
  the request sets none. It counts what the results hold: a member that joins an excerpt
  costs only its lines the excerpt does not hold yet (the overlapping context windows of
  neighbouring message memories are one copy in the excerpt, so counted once), each
  member with its line break.
* A result of one memory is that memory, unchanged. A result of several is an excerpt:
  the best member's record (id, kind, score, dates) with the members' text in the order
  they were said, one line each (a line an earlier member already holds is not repeated),
  the union of their ``source_message_ids``, and ``metadata["grouped_ids"]`` listing every
  member's id, best first.
"""

from __future__ import annotations

import dataclasses

from mnemo_common.tokens import estimate_tokens

from .ranking import Ranked
from .settings import LongTermSettings

#: metadata key of an excerpt listing its members' ids, best first (comma-separated)
GROUPED_IDS = "grouped_ids"


def excerpt(members: list[Ranked]) -> Ranked:
    """One result of ``members`` (best first, one thread): see the module docstring."""
    best = members[0]
    if len(members) == 1:
        return best
    ordered = sorted(
        members,
        key=lambda r: (r.record.valid_from_ms or r.record.created_at_ms, r.record.id),
    )
    lines: list[str] = []
    seen: set[str] = set()
    sources: list[str] = []
    for m in ordered:
        for line in m.record.text.split("\n"):
            if line.strip() and line not in seen:
                seen.add(line)
                lines.append(line)
        sources += [s for s in m.record.source_message_ids if s not in sources]
    metadata = {**best.record.metadata, GROUPED_IDS: ",".join(m.record.id for m in members)}
    record = best.record.with_changes(
        text="\n".join(lines), source_message_ids=tuple(sources), metadata=metadata
    )
    return dataclasses.replace(best, record=record)


def relevant(r: Ranked, cfg: LongTermSettings) -> bool:
    """Whether ``r`` may join an excerpt (see the module docstring)."""
    return r.vector_score >= cfg.group_min_similarity or (
        r.keyword_score > 0 and r.keyword_score >= cfg.group_min_keyword
    )


def _lines(text: str) -> list[str]:
    """The non-empty lines of ``text``, each once, in order (what an excerpt keeps)."""
    return list(dict.fromkeys(line for line in text.split("\n") if line.strip()))


def group_by_thread(
    ranked: list[Ranked], top_k: int, token_budget: int, cfg: LongTermSettings
) -> tuple[list[Ranked], int]:
    """At most ``top_k`` results of ``ranked`` (best first), the relevant memories of a
    thread folded into its excerpt, within ``token_budget`` tokens (0 = none); returns
    (results, tokens used)."""
    slots: list[list[Ranked]] = []
    held: list[set[str]] = []  # the lines each result holds so far
    slot_of: dict[str, int] = {}
    used = 0
    for r in ranked:
        thread = r.record.source_thread_id
        lines = _lines(r.record.text)
        joins = thread in slot_of and relevant(r, cfg)
        if joins:
            new = [line for line in lines if line not in held[slot_of[thread]]]
            cost = estimate_tokens("\n".join(new) + "\n") if new else 0
        elif len(slots) < top_k:
            cost = estimate_tokens(r.record.text + "\n")
        else:
            continue
        if token_budget and used + cost > token_budget:
            continue
        if joins:
            slots[slot_of[thread]].append(r)
            held[slot_of[thread]].update(lines)
        else:
            if thread and thread not in slot_of:
                slot_of[thread] = len(slots)
            slots.append([r])
            held.append(set(lines))
        used += cost
    out = [excerpt(s) for s in slots]
    return out, sum(estimate_tokens(r.record.text) for r in out)
