"""gRPC health of the memory service, driven by a background Redis probe.

The standard ``grpc.health.v1`` service answers SERVING for ``""`` and
``mnemo.memory.v1.MemoryService`` only while Redis answers PING; a probe every
``SERVER__HEALTH_PROBE_INTERVAL_S`` flips it both ways (down after two failed probes in a
row, up after one success), so the service recovers by itself
when Redis returns. While draining (SIGTERM) everything is NOT_SERVING for good.
RPCs consult :attr:`RedisHealth.up` to fail fast with UNAVAILABLE while Redis is down.

``mnemo.memory.v1.Recall`` is SERVING once long-term memory is open (embedding model
loaded, vector store reached) — informational: PrepareTurn answers before that, without
recall (``degraded=["vector_store"]``). ``make run`` waits for it before saying "up".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio
from mnemo_common import metrics

log = logging.getLogger(__name__)

SERVICE_NAME = "mnemo.memory.v1.MemoryService"
RECALL_SERVICE_NAME = "mnemo.memory.v1.Recall"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

REDIS_UP = metrics.gauge("mnemo_memory_redis_up", "1 when the last Redis probe succeeded")
SERVING_UP = metrics.gauge(
    "mnemo_memory_serving",
    "1 while the gRPC health of MemoryService is SERVING (0: Redis unreachable, or draining)",
)


class RedisHealth:
    """Probe loop + the health servicer it drives."""

    def __init__(
        self,
        redis: Any,
        servicer: health_aio.HealthServicer,
        *,
        interval_s: float,
        timeout_s: float,
        failures_to_down: int = 2,
    ) -> None:
        self.redis = redis
        self.servicer = servicer
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        # one slow PING on a busy host must not flap the service to NOT_SERVING
        self.failures_to_down = failures_to_down
        self._failures = 0
        self.up = False
        self.draining = False
        self._task: asyncio.Task[None] | None = None
        self._known = False

    async def probe_once(self) -> bool:
        """PING Redis once and update the health status; returns whether Redis is up."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.redis.ping()
            ok = True
        except Exception as exc:  # any failure means not serving
            ok = False
            if self.up or not self._known:
                log.warning(
                    "redis probe failed: %s",
                    exc.__class__.__name__,
                    extra={"error": str(exc)[:200]},
                )
        self._failures = 0 if ok else self._failures + 1
        if ok or not self.up or self._failures >= self.failures_to_down:
            await self._set(ok)
        return ok

    async def _set(self, ok: bool) -> None:
        changed = ok != self.up or not self._known
        self.up, self._known = ok, True
        REDIS_UP.set(1 if ok else 0)
        if not self.draining:
            SERVING_UP.set(1 if ok else 0)
        if changed and not self.draining:
            status = SERVING if ok else NOT_SERVING
            for name in ("", SERVICE_NAME):
                await self.servicer.set(name, status)
            log.info("health %s", "SERVING" if ok else "NOT_SERVING (redis unreachable)")

    async def set_recall(self, ok: bool) -> None:
        """Report whether long-term recall is ready (``RECALL_SERVICE_NAME``)."""
        if not self.draining:
            await self.servicer.set(RECALL_SERVICE_NAME, SERVING if ok else NOT_SERVING)

    async def _loop(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="redis-health-probe")

    async def drain(self) -> None:
        """NOT_SERVING for every service from now on (SIGTERM)."""
        self.draining = True
        SERVING_UP.set(0)
        await self.servicer.enter_graceful_shutdown()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
