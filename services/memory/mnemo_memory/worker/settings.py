"""Worker settings (``WORKER__*``), nested into the memory service settings as ``worker``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class WorkerSettings(BaseModel):
    # port of the worker's own Prometheus /metrics endpoint
    metrics_port: int = Field(9465, ge=0, le=65535)
