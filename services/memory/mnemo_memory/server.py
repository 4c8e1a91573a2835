"""``mnemo-memory serve``: the grpc.aio server, health, reflection, metrics, drain.

:func:`create_server` builds and starts everything (tests and the in-process fixture call
it); :func:`serve` adds the process concerns: logging, the ``/metrics`` port, SIGTERM →
health NOT_SERVING → ``server.stop(SERVER__GRACE_S)`` → exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from mnemo.memory.v1 import memory_pb2, memory_pb2_grpc
from mnemo_common import metrics
from mnemo_common.logging import configure_logging

from mnemo_memory.config import MemoryServiceSettings
from mnemo_memory.health import SERVICE_NAME, RedisHealth
from mnemo_memory.interceptors import ErrorMapping, TokenAuthInterceptor
from mnemo_memory.longterm.service import LongTermMemory
from mnemo_memory.purge import Purger
from mnemo_memory.runtime import DEFAULT, build_runtime, build_worker
from mnemo_memory.servicer import MemoryServicer
from mnemo_memory.stores import outbox, usage
from mnemo_memory.stores.redis_client import create_redis, describe_target
from mnemo_memory.stores.shortterm import ShortTermStores
from mnemo_memory.wire_server import WireServer

log = logging.getLogger(__name__)


@dataclass
class ServerHandles:
    """What :func:`create_server` started; ``shutdown`` drains and closes all of it."""

    settings: MemoryServiceSettings
    redis: Any
    probe_redis: Any
    stores: ShortTermStores
    servicer: MemoryServicer
    health: RedisHealth
    longterm: LongTermMemory | None
    #: the memory wire's server and port (ADR 0032); None / 0 when SERVER__WIRE_PORT is 0
    wire: WireServer | None = None
    wire_port: int = 0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    closed: bool = False

    async def shutdown(self, server: grpc.aio.Server, grace: float | None = None) -> None:
        """NOT_SERVING, finish in-flight RPCs within ``grace`` seconds, close clients."""
        if self.closed:
            return
        self.closed = True
        await self.health.drain()
        grace = self.settings.server.grace_s if grace is None else grace
        if self.wire is not None:
            await asyncio.gather(server.stop(grace), self.wire.stop(grace))
        else:
            await server.stop(grace)
        await self.health.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.longterm is not None:
            with contextlib.suppress(Exception):
                await self.longterm.aclose()
        for client in (self.redis, self.probe_redis):
            with contextlib.suppress(Exception):
                await client.aclose()


async def _stats_loop(
    stores: ShortTermStores,
    settings: MemoryServiceSettings,
    longterm: LongTermMemory | None = None,
) -> None:
    """Refresh the usage gauges (keys by kind, bytes, job stream, persistence, vectors)."""
    while True:
        try:
            stats = await usage.global_stats(stores, scan_limit=settings.shortterm.stats_scan_limit)
            usage.publish_gauges(stats)
        except Exception as exc:  # gauges go stale, the service goes on
            log.debug("stats refresh failed: %s", exc)
        try:
            usage.publish_persistence(await usage.persistence_status(stores.redis))
        except Exception as exc:
            log.debug("persistence status refresh failed: %s", exc)
        if longterm is not None:
            try:
                usage.VECTORS.set((await longterm.stats(None))["vector_count"])
            except Exception as exc:  # the vector store is down or still opening
                log.debug("vector count refresh failed: %s", exc)
        await asyncio.sleep(settings.server.stats_interval_s)


async def create_server(
    settings: MemoryServiceSettings,
    *,
    redis: Any = None,
    longterm: LongTermMemory | str | None = DEFAULT,
    port: int | None = None,
    wire_port: int | None = None,
    stats_loop: bool = False,
) -> tuple[grpc.aio.Server, int, ServerHandles]:
    """Build and start the gRPC server (and the memory wire); returns (server, bound port,
    handles).

    ``longterm`` defaults to ``build_longterm(settings)``; pass None to run
    short-term only. ``port`` overrides ``SERVER__GRPC_PORT`` (0 = any free port),
    ``wire_port`` ``SERVER__WIRE_PORT`` (None = the setting; the bound port is
    ``handles.wire_port``).
    """
    runtime = build_runtime(settings, redis=redis, longterm=longterm)
    redis, stores, longterm = runtime.redis, runtime.stores, runtime.longterm
    probe_redis = create_redis(settings, target=runtime.target)
    server = grpc.aio.server(
        # error mapping, request ids and RPC metrics are wrapped around each handler at
        # registration (ErrorMapping), not run as a per-call interceptor (ADR 0031)
        interceptors=(
            [TokenAuthInterceptor(settings.server.auth_token)] if settings.server.auth_token else []
        ),
        options=[
            ("grpc.max_receive_message_length", settings.server.max_receive_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    registrar = ErrorMapping(server)
    health_servicer = health_aio.HealthServicer()
    registrar.add(health_pb2_grpc.add_HealthServicer_to_server, health_servicer)
    health = RedisHealth(
        probe_redis,
        health_servicer,
        interval_s=settings.server.health_probe_interval_s,
        timeout_s=settings.server.health_probe_timeout_s,
    )
    servicer = MemoryServicer(settings, stores, longterm, redis_health=health)
    registrar.add(memory_pb2_grpc.add_MemoryServiceServicer_to_server, servicer)
    if settings.server.reflection:
        reflection.enable_server_reflection(
            (
                memory_pb2.DESCRIPTOR.services_by_name["MemoryService"].full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            registrar,
        )
    bind_port = settings.server.grpc_port if port is None else port
    host = settings.server.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 pod IP (downward API) needs brackets in host:port
    bound = server.add_insecure_port(f"{host}:{bind_port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind {settings.server.host}:{bind_port}")
    handles = ServerHandles(
        settings=settings,
        redis=redis,
        probe_redis=probe_redis,
        stores=stores,
        servicer=servicer,
        health=health,
        longterm=longterm,
    )
    # the first probe decides the initial status before any client can ask
    if await health.probe_once():
        with contextlib.suppress(Exception):
            await stores.jobs.ensure_group()
    await server.start()
    wire_bind = settings.server.wire_port if wire_port is None else wire_port
    if wire_port is not None or wire_bind:
        handles.wire = WireServer(
            registrar,
            auth_token=settings.server.auth_token,
            max_message_bytes=settings.server.max_receive_message_bytes,
        )
        try:
            handles.wire_port = await handles.wire.start(settings.server.host, wire_bind)
        except OSError as exc:
            await server.stop(0)
            raise RuntimeError(f"cannot bind the memory wire {host}:{wire_bind}: {exc}") from exc
    health.start()
    if stats_loop:
        handles.tasks.append(asyncio.create_task(_stats_loop(stores, settings, longterm)))
    if not stores.inline_global:
        # Cluster: deliver outbox records whose user sends nothing more (ADR 0012)
        sweep = outbox.sweep_loop(
            redis, stores.keys, settings.shortterm.outbox_sweep_s, stores.threads.replication
        )
        handles.tasks.append(asyncio.create_task(sweep))
    purger = Purger(
        redis,
        getattr(longterm, "store", None),
        interval_s=settings.shortterm.erasure_purge_s,
    )
    servicer.erasures.purger = purger
    handles.tasks.append(asyncio.create_task(purger.run()))
    # unfinished erasures (a store was down) complete by themselves once it is back
    handles.tasks.append(
        asyncio.create_task(servicer.erasures.resume_loop(settings.shortterm.erasure_resume_s))
    )
    log.info(
        "memory service listening",
        extra={
            "port": bound,
            "wire_port": handles.wire_port or None,
            "redis": describe_target(runtime.target),
            "grpc_service": SERVICE_NAME,
            "longterm": longterm is not None,
        },
    )
    return server, bound, handles


async def _open_longterm(opener: Any, health: RedisHealth) -> None:
    try:
        await opener()
        log.info("long-term memory ready")
        await health.set_recall(True)
    except Exception:  # recall degrades per request until it works
        log.exception("long-term memory failed to open")


async def serve(settings: MemoryServiceSettings) -> int:
    """Run until SIGTERM/SIGINT, then drain; returns the exit code."""
    configure_logging("mnemo-memory", settings.log.level, settings.log.json_format)
    if settings.server.metrics_port:
        metrics.start_metrics_server(settings.server.metrics_port, settings.server.metrics_host)
    server, _, handles = await create_server(settings, stats_loop=True)
    opener = getattr(handles.longterm, "open", None)
    if opener is not None:
        # load the embedding model now, not on the first chat turn (health is Redis-only)
        await handles.health.set_recall(False)
        handles.tasks.append(asyncio.create_task(_open_longterm(opener, handles.health)))
    worker = _start_inprocess_worker(settings, handles) if settings.server.run_worker else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: NOT_SERVING, draining for %.1fs", settings.server.grace_s)
    if worker is not None:
        await worker.stop()
    await handles.shutdown(server)
    log.info("stopped")
    return 0


@dataclass
class _InProcessWorker:
    """The stream worker running as a task of the server's loop (``SERVER__RUN_WORKER``)."""

    worker: Any
    task: asyncio.Task[Any]
    provider: Any

    async def stop(self) -> None:
        """Finish the job in hand, then stop consuming."""
        self.worker.request_stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        with contextlib.suppress(Exception):
            await self.provider.aclose()


def _start_inprocess_worker(
    settings: MemoryServiceSettings, handles: ServerHandles
) -> _InProcessWorker | None:
    """Consume the job stream in this process, sharing its Redis client and vector store."""
    if handles.longterm is None:
        log.warning("SERVER__RUN_WORKER is set but long-term memory is off: no worker started")
        return None
    from mnemo_common.llm import build_provider

    provider = build_provider(settings)
    worker = build_worker(settings, handles.stores, handles.longterm, provider)
    log.info("extraction worker running in-process", extra={"llm_provider": provider.name})
    return _InProcessWorker(worker, asyncio.create_task(worker.run()), provider)
