"""Lua scripts run with EVALSHA, loaded on demand (also after a Redis restart).

redis-py's ``Script`` objects make every pipeline send ``SCRIPT EXISTS`` first (an extra
round trip on each call); :class:`LuaScript` instead sends ``EVALSHA`` and, only when
Redis answers ``NOSCRIPT``, loads the script and sends it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError


def _is_noscript(exc: BaseException) -> bool:
    return isinstance(exc, NoScriptError) or (
        isinstance(exc, ResponseError) and str(exc).startswith("NOSCRIPT")
    )


class LuaScript:
    """One Lua script; ``run`` executes it, ``queue`` adds it to a pipeline."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - Redis' own id

    async def load(self, redis: Any) -> None:
        await redis.script_load(self.text)

    async def run(self, redis: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA, loading the script first when Redis does not know it (yet)."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if not _is_noscript(exc):
                raise
        await self.load(redis)
        return await redis.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Add an EVALSHA to ``pipe``; pair with :func:`execute_with_scripts`."""
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


async def execute_with_scripts(
    redis: Any, build: Any, scripts: Sequence[LuaScript], *, transaction: bool
) -> list[Any]:
    """Run the pipeline ``build(pipe)`` fills; on NOSCRIPT load ``scripts`` and run it again.

    A NOSCRIPT reply means the script did not run, so running the pipeline again cannot
    apply a script twice (the other commands of a read pipeline are repeatable).
    """
    for attempt in range(2):
        pipe = redis.pipeline(transaction=transaction)
        build(pipe)
        results = await pipe.execute(raise_on_error=False)
        if attempt == 0 and any(isinstance(r, BaseException) and _is_noscript(r) for r in results):
            for script in scripts:
                await script.load(redis)
            continue
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return list(results)
    raise AssertionError("unreachable")  # pragma: no cover
