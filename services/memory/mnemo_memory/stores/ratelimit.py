"""Per-user rate limits per minute, hour and day (seed 001), checked and counted atomically;
per-tenant windows (``RATE_LIMIT__TENANT_PER_*``) the same way, in the tenant's own hash.

Algorithm: sliding-window counter. Each window keeps a count for the current clock-aligned
bucket and the previous one; the estimate ``previous * (1 - elapsed/window) + current``
must stay within the limit. One Lua script reads all windows, admits the request only when
every window has room, then counts it in every window — so parallel requests can never
be admitted beyond a limit. All counts of a user sit in one hash
(``P:u:{uid}:ratelimit``, fields ``minute:<bucket>``...) that expires two days after
the last request; stale buckets are deleted by the script. No HEXPIRE/HSETEX: it runs
on Redis 7.0. Time comes from the Redis server (``TIME``) so replicas of the service
with skewed clocks agree. ``docs/adr/0004-rate-limiting.md`` has the reasoning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mnemo_memory.errors import RateLimitedError

from .keys import KeyBuilder

if TYPE_CHECKING:
    from mnemo_common.settings import RateLimitSettings

from .lua import LuaScript

WINDOWS_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}

# KEYS: 1 ratelimit hash. ARGV: 1 now_ms (0 = Redis TIME), 2 count (1/0),
#       then (name, window_ms, limit) per enabled window.
# Returns {blocked window or '', retry_after_ms, "name:limit:remaining:reset_ms,..."}
CHECK_AND_COUNT = LuaScript(
    "rate_limit",
    r"""
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local count = ARGV[2] == '1'
local n = (#ARGV - 2) / 3
local blocked = ''
local retry = 0
local rows = {}
local longest = 0
for i = 1, n do
  local name = ARGV[3 * i]
  local win = tonumber(ARGV[3 * i + 1])
  local limit = tonumber(ARGV[3 * i + 2])
  if win > longest then longest = win end
  local bucket = math.floor(now / win)
  local cur = tonumber(redis.call('HGET', KEYS[1], name .. ':' .. bucket) or '0')
  local prev = tonumber(redis.call('HGET', KEYS[1], name .. ':' .. (bucket - 1)) or '0')
  local elapsed = now - bucket * win
  local est = prev * (win - elapsed) / win + cur
  if est + 1 > limit then
    local wait
    if cur + 1 > limit then
      -- wait for the next bucket, then for this bucket's weight to decay enough
      local need = 1 - (limit - 1) / cur
      if need < 0 then need = 0 end
      wait = (win - elapsed) + need * win
    else
      local need = 1 - (limit - cur - 1) / prev
      wait = need * win - elapsed
    end
    if wait < 1 then wait = 1 end
    if wait > retry then retry = wait end
    if blocked == '' then blocked = name end
  end
  rows[i] = {name, limit, est, win - elapsed, bucket}
end
-- one packed string instead of 4 array elements per window: cheaper to parse
local packed = {}
local admitted = blocked == '' and count
for i = 1, n do
  local r = rows[i]
  local used = r[3]
  if admitted then
    redis.call('HINCRBY', KEYS[1], r[1] .. ':' .. r[5], 1)
    used = used + 1
  end
  local remaining = math.floor(r[2] - used)
  if remaining < 0 then remaining = 0 end
  packed[i] = string.format('%s:%d:%d:%d', r[1], r[2], remaining, math.ceil(r[4]))
end
local out = {blocked, math.ceil(retry), table.concat(packed, ',')}
if admitted then
  if redis.call('HLEN', KEYS[1]) > 2 * n then
    local keep = {}
    for i = 1, n do
      keep[rows[i][1] .. ':' .. rows[i][5]] = true
      keep[rows[i][1] .. ':' .. (rows[i][5] - 1)] = true
    end
    for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
      if not keep[f] then redis.call('HDEL', KEYS[1], f) end
    end
  end
  redis.call('PEXPIRE', KEYS[1], 2 * longest)
end
return out
""",
)


@dataclass(frozen=True)
class WindowState:
    window: str
    limit: int
    remaining: int
    reset_after_s: int


class RateLimiter:
    """Check-and-count per user; raises RateLimitedError naming the full window."""

    def __init__(self, redis: Any, keys: KeyBuilder, settings: RateLimitSettings) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings

    def windows(self, *, tenant: bool = False) -> list[tuple[str, int, int]]:
        """(name, window ms, limit) of the enabled windows (limit 0 = window off); the
        tenant's are named ``tenant_minute``..."""
        if not self.settings.enabled:
            return []
        s = self.settings
        if tenant:
            limits = {"minute": s.tenant_per_minute, "hour": s.tenant_per_hour}
            limits["day"] = s.tenant_per_day
        else:
            limits = {"minute": s.per_minute, "hour": s.per_hour, "day": s.per_day}
        prefix = "tenant_" if tenant else ""
        return [(prefix + name, WINDOWS_MS[name], lim) for name, lim in limits.items() if lim > 0]

    def script_call(
        self, user_id: str, *, count: bool, now_ms: int = 0
    ) -> tuple[list[str], list[Any]] | None:
        """(keys, args) for :data:`CHECK_AND_COUNT`, or None when limits are disabled —
        lets PrepareTurn put the check in its read pipeline (one round trip)."""
        return self._call(self.keys.rate_limit(user_id), self.windows(), count, now_ms)

    def tenant_script_call(
        self, tenant: str, *, count: bool, now_ms: int = 0
    ) -> tuple[list[str], list[Any]] | None:
        """Like :meth:`script_call` for a tenant's windows; None without tenant limits.
        Queued in the same pipeline, the two checks count independently: a request one
        of them refuses still counts in the other (as a refused ownership check does)."""
        if not tenant:
            return None
        return self._call(
            self.keys.tenant_rate_limit(tenant), self.windows(tenant=True), count, now_ms
        )

    @staticmethod
    def _call(
        key: str, windows: list[tuple[str, int, int]], count: bool, now_ms: int
    ) -> tuple[list[str], list[Any]] | None:
        if not windows:
            return None
        args: list[Any] = [now_ms, "1" if count else "0"]
        for name, win, lim in windows:
            args += [name, win, lim]
        return [key], args

    @staticmethod
    def parse(reply: list[Any]) -> tuple[list[WindowState], RateLimitedError | None]:
        """Window states and the error to raise (None when admitted) from a script reply."""
        blocked, retry_ms = reply[0], int(reply[1])
        states = []
        limit_of = {}
        for part in str(reply[2]).split(",") if reply[2] else ():
            name, lim, remaining, reset_ms = part.split(":")
            states.append(
                WindowState(name, int(lim), int(remaining), math.ceil(int(reset_ms) / 1000))
            )
            limit_of[name] = int(lim)
        error = None
        if blocked:
            error = RateLimitedError(
                str(blocked), limit_of[str(blocked)], max(1, math.ceil(retry_ms / 1000))
            )
        return states, error

    async def check(
        self, user_id: str, *, count: bool = True, now_ms: int = 0, tenant: str = ""
    ) -> list[WindowState]:
        """Admit (and count) one request or raise RateLimitedError (``tenant``: check that
        tenant's windows instead of the user's)."""
        if tenant:
            call = self.tenant_script_call(tenant, count=count, now_ms=now_ms)
        else:
            call = self.script_call(user_id, count=count, now_ms=now_ms)
        if call is None:
            return []
        reply = await CHECK_AND_COUNT.run(self.redis, *call)
        states, error = self.parse(reply)
        if error is not None:
            raise error
        return states
