"""Per-user preferences (seed 002's ``user:{user_id}:preferences``): one Redis hash.

The hash lives ``MEMORY__USER_TTL_DAYS`` and the TTL is refreshed on every write. Keys
are ids (``^[A-Za-z0-9._@+-]{1,128}$``); values are limited to
``MEMORY__MAX_PREFERENCE_VALUE_BYTES`` and a user to ``MEMORY__MAX_PREFERENCES_PER_USER``
keys — checked and written by one Lua script, so concurrent writes cannot exceed it.
"""

from __future__ import annotations

from typing import Any

from mnemo_memory.errors import ErasedError, InvalidArgumentError

from .keys import KeyBuilder, checked_id
from .lua import LuaScript
from .text import checked_text

# KEYS: 1 prefs hash, 2 the user's erasure job. ARGV: 1 field, 2 value, 3 max fields, 4 ttl ms
# Returns 1 when stored, 0 when the hash is full and the field is new, -1 while the user
# is being erased.
SET_PREFERENCE = LuaScript(
    "set_preference",
    r"""
if redis.call('HGET', KEYS[2], 'state') == 'running' then return -1 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and
   redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
""",
)


class PreferenceStore:
    """get/set/delete of single preference keys of a user."""

    def __init__(self, redis: Any, keys: KeyBuilder, policy: Any) -> None:
        self.redis = redis
        self.keys = keys
        self.policy = policy

    @property
    def ttl_ms(self) -> int:
        return int(self.policy.user_ttl_days * 86_400_000)

    async def get_all(self, user_id: str) -> dict[str, str]:
        """Every preference of the user (empty when none)."""
        values: dict[str, str] = await self.redis.hgetall(self.keys.preferences(user_id))
        return values

    async def set(self, user_id: str, key: str, value: str) -> dict[str, str]:
        """Store one preference (refreshing the TTL); returns all preferences."""
        hkey = self.keys.preferences(user_id)
        checked_id(key, "key")
        checked_text(value, "value", self.policy.max_preference_value_bytes)
        stored = await SET_PREFERENCE.run(
            self.redis,
            [hkey, self.keys.erasure(user_id)],
            [key, value, self.policy.max_preferences_per_user, self.ttl_ms],
        )
        if stored == -1:
            raise ErasedError("the user is being erased; try again when the erasure is done")
        if not stored:
            raise InvalidArgumentError(
                "key",
                f"the user already has {self.policy.max_preferences_per_user} "
                "preferences (MEMORY__MAX_PREFERENCES_PER_USER); delete one first",
            )
        return await self.get_all(user_id)

    async def delete(self, user_id: str, key: str) -> dict[str, str]:
        """Remove one preference (absent keys are fine); returns all preferences."""
        hkey = self.keys.preferences(user_id)
        checked_id(key, "key")
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(hkey, key)
        pipe.hgetall(hkey)
        _, values = await pipe.execute()
        return dict(values)
