"""Entry point of ``mnemo-memory worker`` (filled in by the long-term memory component)."""

from __future__ import annotations

from typing import Any


def run(settings: Any) -> int:
    """Run the worker until SIGTERM; returns the process exit code."""
    raise SystemExit("mnemo-memory worker: not implemented yet")
