"""A micro-batcher: one daemon thread runs the model; what queues meanwhile goes together.

Every caller (query embeddings of concurrent turns, the worker's documents) submits its
texts and gets a ``concurrent.futures.Future``. The thread takes the oldest request and,
without waiting, everything else already queued — up to ``max_batch`` texts per model
call — runs the model once and hands each caller the rows of its own texts. A request
alone is embedded at once (no added latency at concurrency 1); requests that arrive while
a batch runs form the next batch, so throughput approaches the batched rate as load
grows. ``wait_s`` > 0 additionally holds an unfilled batch open that long for more
requests. A request larger than ``max_batch`` spans several model calls, in FIFO order
with the others. Zero-argument callables (the model load) run in queue order too.

The thread is a daemon: a process told to stop while the model still loads must not
outlive its grace period waiting for it (see :func:`mnemo_memory.embed.load_in_progress`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np


class _Request:
    __slots__ = ("future", "out", "started", "taken", "texts")

    def __init__(self, texts: list[str], dimension: int) -> None:
        self.texts = texts
        self.future: Future[np.ndarray] = Future()
        self.out = np.empty((len(texts), dimension), dtype=np.float32)
        self.taken = 0  # texts handed to a model call so far
        self.started = False


class _Call:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


class MicroBatcher:
    """Coalesces concurrent :meth:`submit` calls into model calls of ≤ ``max_batch``."""

    def __init__(
        self,
        run: Callable[[list[str]], np.ndarray],
        *,
        dimension: int,
        max_batch: int,
        wait_s: float = 0.0,
        name: str = "embed",
    ) -> None:
        self._run = run
        self.dimension = dimension
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._queue: queue.SimpleQueue[_Request | _Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        #: model calls made and texts embedded (tests and benchmarks read them)
        self.batches = 0
        self.texts = 0
        self.largest_batch = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # --- submitting ---
    def _put(self, item: _Request | _Call) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._queue.put(item)

    def submit(self, texts: list[str]) -> Future[np.ndarray]:
        """Vectors for ``texts`` (shape (len(texts), dimension)) once embedded."""
        req = _Request(texts, self.dimension)
        if not texts:
            req.future.set_result(req.out)
            return req.future
        self._put(req)
        return req.future

    def call(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn`` on the model thread, after everything queued before it."""
        item = _Call(fn)
        self._put(item)
        return item.future

    def shutdown(self) -> None:
        """Stop taking work; queued requests are cancelled, the thread ends."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item.future.cancel()
            self._queue.put(None)

    # --- the model thread ---
    def _loop(self) -> None:
        pending: deque[_Request | _Call] = deque()
        while True:
            if not pending:
                item = self._queue.get()
                if item is None:
                    return
                pending.append(item)
            if not self._gather(pending):
                return
            head = pending[0]
            if isinstance(head, _Call):
                pending.popleft()
                if head.future.set_running_or_notify_cancel():
                    try:
                        head.future.set_result(head.fn())
                    except BaseException as exc:  # delivered to the waiting caller
                        head.future.set_exception(exc)
                continue
            self._run_batch(pending)

    def _queued_texts(self, pending: deque[_Request | _Call]) -> int:
        n = 0
        for item in pending:
            if isinstance(item, _Call):
                break
            n += len(item.texts) - item.taken
        return n

    def _gather(self, pending: deque[_Request | _Call]) -> bool:
        """Move what is queued into ``pending`` (up to a full batch, waiting at most
        ``wait_s`` for it); False when shut down."""
        deadline = time.monotonic() + self.wait_s
        while self._queued_texts(pending) < self.max_batch:
            try:
                remaining = deadline - time.monotonic()
                if remaining > 0 and not isinstance(pending[0], _Call):
                    item = self._queue.get(timeout=remaining)
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                for p in pending:
                    # a request already partly embedded is RUNNING and cannot be cancelled
                    if not p.future.cancel() and not p.future.done():
                        p.future.set_exception(RuntimeError("the embedder was closed"))
                return False
            pending.append(item)
        return True

    def _run_batch(self, pending: deque[_Request | _Call]) -> None:
        parts: list[tuple[_Request, int, int]] = []  # request, first text, end
        texts: list[str] = []
        for item in list(pending):
            if isinstance(item, _Call) or len(texts) >= self.max_batch:
                break
            if not item.started:
                if not item.future.set_running_or_notify_cancel():
                    pending.remove(item)  # its caller gave up before it ran
                    continue
                item.started = True
            take = min(len(item.texts) - item.taken, self.max_batch - len(texts))
            parts.append((item, item.taken, item.taken + take))
            texts.extend(item.texts[item.taken : item.taken + take])
            item.taken += take
        if not texts:
            return
        try:
            vectors = self._run(texts)
        except BaseException as exc:
            for req, _, _ in parts:
                if req in pending:
                    pending.remove(req)
                    req.future.set_exception(exc)
            return
        self.batches += 1
        self.texts += len(texts)
        self.largest_batch = max(self.largest_batch, len(texts))
        row = 0
        for req, start, end in parts:
            req.out[start:end] = vectors[row : row + end - start]
            row += end - start
            if end == len(req.texts):
                pending.remove(req)
                req.future.set_result(req.out)
