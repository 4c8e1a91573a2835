"""Worker settings (``WORKER__*``), nested into the memory service settings as ``worker``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class WorkerSettings(BaseModel):
    # port of the worker's own Prometheus /metrics endpoint (0 = off)
    metrics_port: int = Field(9465, ge=0, le=65535)
    # interface the worker's /metrics server binds to (loopback by default; the chart:
    # the pod IP)
    metrics_host: str = "127.0.0.1"
    # seconds without a heartbeat of the consumer loop after which /livez (on metrics_port)
    # answers 503; a running job beats every claim_idle_ms/3, so keep this above that
    liveness_timeout_s: float = Field(60.0, gt=0)
    # consumer name in the group; empty = "<hostname>-<pid>"
    consumer_name: str = ""
    # milliseconds XREADGROUP blocks waiting for a job (also how fast SIGTERM is noticed)
    block_ms: int = Field(1000, ge=10)
    # a job delivered to a consumer and not acked for this long is claimed (XAUTOCLAIM)
    claim_idle_ms: int = Field(60_000, ge=100)
    # seconds between XAUTOCLAIM sweeps for stale pending jobs
    claim_interval_s: float = Field(5.0, gt=0)
    # attempts of one job (LLM errors, timeouts) before it goes to the dead-letter stream; a
    # bug or a malformed job (TypeError, KeyError, ValueError...) goes there at once
    max_attempts: int = Field(3, ge=1)
    # deliveries (incl. redeliveries after crashes) before a job is dead-lettered
    max_deliveries: int = Field(10, ge=1)
    # retry backoff: base * 2**(attempt-1) seconds, capped
    backoff_base_s: float = Field(1.0, ge=0)
    # longest wait between two attempts of a job (seconds)
    backoff_max_s: float = Field(60.0, ge=0)
    # seconds between scans for idle threads (episode creation); 0 = no scan
    idle_scan_interval_s: float = Field(60.0, ge=0)
    # threads examined per idle scan
    idle_scan_batch: int = Field(100, ge=1)
    # characters of the offline (extractive) summary
    offline_summary_chars: int = Field(1200, ge=100)
