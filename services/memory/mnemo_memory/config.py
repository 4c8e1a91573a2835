"""Settings of the memory service and the worker (one process image, two commands).

``MemoryServiceSettings`` extends the shared :class:`CommonSettings` (``REDIS__*``,
``MEMORY__*``, ``RATE_LIMIT__*``...) with the server's own group (``SERVER__*``), the
worker's (``WORKER__*``) and a few short-term-memory knobs (``SHORTTERM__*``).
``get_settings()`` returns the process singleton.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from mnemo_common.settings import CommonSettings, load_settings
from pydantic import BaseModel, Field, SecretStr

from mnemo_memory.longterm.settings import LongTermSettings
from mnemo_memory.worker.settings import WorkerSettings


class ServerSettings(BaseModel):
    """The gRPC server (``SERVER__*``)."""

    # interface the gRPC server binds to (loopback by default; the Helm chart sets the
    # pod IP, 0.0.0.0 = every interface)
    host: str = Field("127.0.0.1", description="gRPC bind address")
    # gRPC port (0 = pick a free port; tests use this)
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port")
    # port of the memory wire (ADR 0032): the gateway's unary calls as framed TCP beside
    # gRPC, same handlers, same token, same bind address (0 = off, gRPC only)
    wire_port: int = Field(50052, ge=0, le=65535, description="memory wire port, 0 = off")
    # Prometheus /metrics HTTP port of the memory service (0 = disabled)
    metrics_port: int = Field(9464, ge=0, le=65535, description="metrics HTTP port, 0 = off")
    # interface the /metrics server binds to (loopback by default; the chart: the pod IP)
    metrics_host: str = Field("127.0.0.1", description="metrics bind address")
    # shared bearer token every RPC must carry (gRPC metadata `authorization: Bearer ...`;
    # the gateway's GATEWAY__MEMORY_TOKEN); unset = no authentication (loopback only!).
    # grpc.health.v1 stays open for probes
    auth_token: SecretStr | None = Field(None, description="required bearer token")
    # serve grpc.reflection.v1alpha so grpcurl/grpcui can discover the API (needs the token
    # too when one is set)
    reflection: bool = Field(False, description="enable gRPC server reflection")
    # seconds in-flight RPCs get to finish after SIGTERM
    grace_s: float = Field(10.0, ge=0, description="drain time on SIGTERM, seconds")
    # seconds between Redis health probes (flip SERVING / NOT_SERVING)
    health_probe_interval_s: float = Field(1.0, gt=0, description="Redis probe interval")
    # seconds a health probe PING may take before Redis counts as down
    health_probe_timeout_s: float = Field(1.0, gt=0, description="Redis probe timeout")
    # seconds between refreshes of the Redis usage gauges (keys by kind, stream length)
    stats_interval_s: float = Field(30.0, gt=0, description="usage gauge refresh period")
    # largest request accepted, bytes (messages are additionally limited by MEMORY__*)
    max_receive_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    run_worker: bool = Field(
        False,
        description=(
            "also run the extraction worker inside this process (make run, where one "
            "process owns the embedded Chroma); in Kubernetes the worker is its own Deployment"
        ),
    )


class ShortTermSettings(BaseModel):
    """Short-term memory knobs that are not part of the shared policy (``SHORTTERM__*``)."""

    # idempotency keys remembered per thread (oldest pruned first; TTL also applies)
    max_idempotency_keys_per_thread: int = Field(500, ge=10)
    # after deleting a user through the index, SCAN the user's hash-tag pattern for
    # leftovers (O(keyspace); turn off on very large shared instances)
    erasure_scan_fallback: bool = True
    # hours an erasure is remembered (a hashed marker) so that jobs a worker already held
    # for the user are dropped, not written back; must exceed the longest job's run time
    erasure_marker_hours: int = Field(24, ge=1)
    # seconds between passes that finish erasure jobs left pending by a store that was down
    erasure_resume_s: float = Field(5.0, gt=0)
    # after an erasure, deletion or correction the stores' files are rewritten so the
    # deleted bytes leave the disk (Redis AOF/RDB, embedded Chroma); at most one such
    # purge per this many seconds (a burst of erasures costs one rewrite)
    erasure_purge_s: float = Field(30.0, gt=0)
    # keys visited at most by one GetStats keys-by-kind scan; counts are extrapolated above
    stats_scan_limit: int = Field(200_000, ge=100)
    # keys of one user sampled with MEMORY USAGE for approx_bytes
    stats_memory_samples: int = Field(25, ge=1)
    # a summarize_thread job older than this without a result may be enqueued again
    summary_job_stale_s: int = Field(900, ge=10)
    # seconds PrepareTurn waits for long-term recall before answering without it
    # ("vector_store" in degraded); also capped by the caller's deadline
    recall_timeout_s: float = Field(5.0, gt=0)
    # characters of the first user message kept as a thread title
    title_chars: int = Field(80, ge=8)
    # Redis Cluster: seconds between sweeps that relay every user's outbox (jobs committed
    # with a turn whose relay to the job stream failed) when the user sends nothing more
    outbox_sweep_s: float = Field(30.0, gt=0)


class MemoryServiceSettings(CommonSettings):
    """Everything ``mnemo-memory serve`` and ``mnemo-memory worker`` read."""

    server: ServerSettings = ServerSettings()
    worker: WorkerSettings = WorkerSettings()
    shortterm: ShortTermSettings = ShortTermSettings()
    longterm: LongTermSettings = LongTermSettings()

    def secret_values(self) -> dict[str, str | None]:
        values = super().secret_values()
        token = self.server.auth_token
        values["SERVER__AUTH_TOKEN"] = token.get_secret_value() if token else None
        return values


@lru_cache(maxsize=1)
def get_settings() -> MemoryServiceSettings:
    """The process-wide settings, read once from the environment (and ``.env``)."""
    return load_settings(MemoryServiceSettings)


def build_settings(**overrides: Any) -> MemoryServiceSettings:
    """Fresh settings with overrides (tests, fixtures); does not touch the singleton."""
    return load_settings(MemoryServiceSettings, **overrides)
