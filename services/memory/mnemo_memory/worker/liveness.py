"""The worker's liveness: a heartbeat the consumer loop (and a running job's holder) beats on
the event loop, answered as ``/livez`` on the worker's metrics port.

The metrics server runs in its own thread, so ``/metrics`` keeps answering while the event
loop is stuck (a blocking call, a deadlock); ``/livez`` does not: it fails once nothing has
beaten for ``WORKER__LIVENESS_TIMEOUT_S``. A store that is down does not stop the beats (the
loop waits and beats), so it never restarts the worker.
"""

from __future__ import annotations

import threading
import time


class Heartbeat:
    """Monotonic time of the last beat; thread-safe reads for the HTTP thread."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._last: float | None = None
        self._lock = threading.Lock()

    def beat(self) -> None:
        with self._lock:
            self._last = time.monotonic()

    def status(self) -> tuple[int, str]:
        """(HTTP status, body) of ``/livez``: 200 while starting (the loop has not begun:
        the startup probe bounds that) or beating, 503 when silent for too long."""
        with self._lock:
            last = self._last
        if last is None:
            return 200, "starting\n"
        silent = time.monotonic() - last
        if silent > self.timeout_s:
            return 503, f"consumer loop silent for {silent:.0f}s (timeout {self.timeout_s:g}s)\n"
        return 200, "alive\n"
