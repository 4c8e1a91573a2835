"""Every Redis key the memory service writes, built in one place from validated ids.

Layout (``P`` = ``REDIS__KEY_PREFIX``, default ``mnemo``; ``{uid}`` is a Cluster hash tag,
so all of one user's keys live in one slot and one Lua script can update them atomically)::

    P:u:{uid}:threads              zset  thread_id -> last activity ms   TTL thread TTL
    P:u:{uid}:t:TID:messages       list  JSON messages, oldest first      TTL thread TTL
    P:u:{uid}:t:TID:meta           hash  owner, created/updated, counts   TTL thread TTL
    P:u:{uid}:t:TID:summary        str   running summary of older turns   TTL thread TTL
    P:u:{uid}:t:TID:idem           zset  idempotency key -> commit ms     TTL thread TTL
    P:u:{uid}:prefs                hash  preference key -> value          TTL user TTL
    P:u:{uid}:ratelimit            hash  window:bucket -> count           TTL 2 days
    P:u:{uid}:outbox               zset  job / activity JSON -> due ms    TTL thread TTL
                                         (Cluster only: see ``outbox.py``)
    P:tenant:{tenant}:ratelimit    hash  window:bucket -> count (tenant)  TTL 2 days
    P:threads:activity             zset  "uid:tid" -> last activity ms    no TTL (pruned)
    P:jobs                         stream background jobs                 never expires
    P:jobs:dead                    stream dead letters                    never expires
    P:erased:<sha256(uid)[:32]>    str   Redis time (ms) of the last erasure TTL SHORTTERM__
                                         ERASURE_MARKER_HOURS (names no one: a hash)
    P:u:{uid}:inflight             zset  "tid:idempotency key" -> Redis ms  TTL 1 h
                                         of PrepareTurn (see erasure tombstone)
    P:erasure:{tag}:<sha256(uid)[:32]>  hash  the user's erasure job (tombstone): state
                                         running|done, started_at_ms, counts, pending;
                                         no TTL while running, ERASURE_MARKER_HOURS when
                                         done. ``tag`` is a string of the same Cluster slot
                                         as ``{uid}`` that names no one (``slot_tag``), so
                                         the commit script can read it atomically
    P:erasures:pending             zset  user id -> start ms of unfinished erasure jobs
    P:kw:{uid}:...                 hashes the long-term keyword index (BM25 postings,
                                         counts), built and erased by
                                         ``longterm/keywords.py`` (ADR 0024); outside
                                         ``P:u:{uid}:`` (not short-term data)

A thread id is a name within one user: ``alice``'s and ``bob``'s ``trip-planning`` are two
threads, every key of a thread lives in its user's slot, and another user's thread is
simply a thread this user does not have (NOT_FOUND, like any missing one). Nothing
global names a thread except the activity index and the job stream, whose entries carry
the user id too. ``docs/adr/0003`` explains the layout, ``docs/adr/0012`` the change from
global thread ids.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
from dataclasses import dataclass

from mnemo_common.ids import InvalidIdError, validate_id

from mnemo_memory.errors import InvalidArgumentError


def checked_id(value: str | None, field: str) -> str:
    """``value`` when it is a valid id; else InvalidArgumentError naming ``field``."""
    try:
        return validate_id(value, field)
    except InvalidIdError as exc:
        raise InvalidArgumentError(exc.field, exc.reason) from None


#: key kinds by the last path component (``kind_of``), used by stats and erasure receipts
_SUFFIX_KINDS = {
    "messages": "messages",
    "meta": "thread_meta",
    "summary": "summaries",
    "idem": "idempotency_keys",
    "threads": "thread_index",
    "prefs": "preferences",
    "ratelimit": "rate_limit_keys",
    "outbox": "job_outbox",
    "inflight": "inflight_turns",
}


_SLOTS = 16384


def _slot(data: bytes) -> int:
    return binascii.crc_hqx(data, 0) % _SLOTS  # Redis Cluster's CRC16 (XMODEM)


@functools.lru_cache(maxsize=_SLOTS)
def slot_tag(slot: int) -> str:
    """A short hash tag that Redis Cluster maps to ``slot`` (the first ``e<n>`` that does)."""
    n = 0
    while _slot(f"e{n}".encode()) != slot:
        n += 1
    return f"e{n}"


def user_slot_tag(user_id: str) -> str:
    """A hash tag in the same slot as ``{user_id}`` that does not contain the id."""
    return slot_tag(_slot(user_id.encode()))


@dataclass(frozen=True)
class KeyBuilder:
    """Builds keys under ``prefix``; every id argument is validated (field-named errors)."""

    prefix: str = "mnemo"

    # --- per user (hash-tagged) ---
    def user_base(self, user_id: str) -> str:
        return f"{self.prefix}:u:{{{checked_id(user_id, 'user_id')}}}"

    def user_pattern(self, user_id: str) -> str:
        """SCAN MATCH pattern of every per-user key of ``user_id`` (the erasure fallback)."""
        return self.user_base(user_id) + ":*"

    def thread_index(self, user_id: str) -> str:
        return self.user_base(user_id) + ":threads"

    def thread_base(self, user_id: str, thread_id: str) -> str:
        return f"{self.user_base(user_id)}:t:{checked_id(thread_id, 'thread_id')}"

    def messages(self, user_id: str, thread_id: str) -> str:
        return self.thread_base(user_id, thread_id) + ":messages"

    def meta(self, user_id: str, thread_id: str) -> str:
        return self.thread_base(user_id, thread_id) + ":meta"

    def summary(self, user_id: str, thread_id: str) -> str:
        return self.thread_base(user_id, thread_id) + ":summary"

    def idempotency(self, user_id: str, thread_id: str) -> str:
        return self.thread_base(user_id, thread_id) + ":idem"

    def thread_keys(self, user_id: str, thread_id: str) -> list[str]:
        """The per-user keys of one thread (all in the user's slot)."""
        base = self.thread_base(user_id, thread_id)
        return [base + s for s in (":messages", ":meta", ":summary", ":idem")]

    def preferences(self, user_id: str) -> str:
        return self.user_base(user_id) + ":prefs"

    def rate_limit(self, user_id: str) -> str:
        return self.user_base(user_id) + ":ratelimit"

    def outbox(self, user_id: str) -> str:
        """Cluster: global writes of the user's commits not yet relayed (``outbox.py``)."""
        return self.user_base(user_id) + ":outbox"

    def inflight(self, user_id: str) -> str:
        """Turns PrepareTurn has seen and CommitTurn not yet stored (erasure race)."""
        return self.user_base(user_id) + ":inflight"

    def tenant_rate_limit(self, tenant: str) -> str:
        """Per-tenant rate-limit counters (its own hash slot: not a user's key)."""
        return f"{self.prefix}:tenant:{{{checked_id(tenant, 'tenant')}}}:ratelimit"

    def user_keys(self, user_id: str) -> list[str]:
        """Per-user keys that are not per thread."""
        return [
            self.thread_index(user_id),
            self.preferences(user_id),
            self.rate_limit(user_id),
            self.outbox(user_id),
            self.inflight(user_id),
        ]

    def outbox_pattern(self) -> str:
        """SCAN MATCH pattern of every user's outbox (the relay's sweep)."""
        return f"{self.prefix}:u:*:outbox"

    def user_of_key(self, key: str) -> str | None:
        """The user id of a per-user key (its hash tag), None for other keys."""
        head = f"{self.prefix}:u:{{"
        if not key.startswith(head):
            return None
        uid, sep, _ = key[len(head) :].partition("}")
        return uid if sep else None

    def erasure(self, user_id: str) -> str:
        """The user's erasure job / tombstone, in the user's slot but naming no one."""
        uid = checked_id(user_id, "user_id")
        digest = hashlib.sha256(uid.encode()).hexdigest()[:32]
        return f"{self.prefix}:erasure:{{{user_slot_tag(uid)}}}:{digest}"

    def pending_erasures(self) -> str:
        return f"{self.prefix}:erasures:pending"

    # --- global ---

    def erased(self, user_id: str) -> str:
        """When the user was last erased, so the worker drops jobs it already held for them."""
        digest = hashlib.sha256(checked_id(user_id, "user_id").encode()).hexdigest()[:32]
        return f"{self.prefix}:erased:{digest}"

    def activity_index(self) -> str:
        return f"{self.prefix}:threads:activity"

    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    def dead_letters(self) -> str:
        return f"{self.prefix}:jobs:dead"

    @staticmethod
    def activity_member(user_id: str, thread_id: str) -> str:
        """Member of the activity index; ids never contain ``:`` so it splits back."""
        return f"{user_id}:{thread_id}"

    @staticmethod
    def inflight_member(thread_id: str, idempotency_key: str) -> str:
        return f"{thread_id}:{idempotency_key}"

    @staticmethod
    def split_activity_member(member: str) -> tuple[str, str]:
        user_id, _, thread_id = member.partition(":")
        return user_id, thread_id

    def kind_of(self, key: str) -> str:
        """The kind of a key under this prefix (stats' keys-by-kind), ``other`` if unknown."""
        if not key.startswith(self.prefix + ":"):
            return "foreign"
        if key in (self.jobs(), self.dead_letters()):
            return "jobs"
        if key == self.activity_index():
            return "activity_index"
        if key.startswith((f"{self.prefix}:erased:", f"{self.prefix}:erasure:")):
            return "erasure_markers"
        if key == self.pending_erasures():
            return "erasure_markers"
        rest = key[len(self.prefix) + 1 :]
        if not rest.startswith("u:{"):
            return "other"
        return _SUFFIX_KINDS.get(key.rsplit(":", 1)[-1], "other")
