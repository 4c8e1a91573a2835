"""The two model runtimes behind :class:`~mnemo_memory.embed.Embedder`.

* :class:`OnnxBackend` (``EMBEDDING__BACKEND=onnx``, the default): the model exported to
  ONNX at setup/build time (``python -m mnemo_memory.embed.export``), run by onnxruntime
  with the model's own ``tokenizer.json`` through ``tokenizers``; mean pooling over the
  attention mask and L2 normalisation as sentence-transformers does. No torch.
* :class:`SentenceTransformersBackend` (``EMBEDDING__BACKEND=sentence-transformers``): the
  reference path (torch), kept as the fallback and what the ONNX export is checked against.

Both take a list of texts and return L2-normalised float32 vectors, shape (n, dimension);
neither ever touches the network.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mnemo_memory.errors import ModelMismatchError

log = logging.getLogger(__name__)

#: metadata keys the export writes into the ONNX file (and the loader checks)
META_MODEL_ID = "mnemo.model_id"
META_DIMENSION = "mnemo.dimension"
META_MAX_SEQ = "mnemo.max_seq_length"
META_VARIANT = "mnemo.variant"


class Backend(Protocol):
    dimension: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def max_seq_length(model_path: str) -> int:
    """The model's sentence-transformers ``max_seq_length`` (256 for MiniLM)."""
    try:
        cfg = json.loads((Path(model_path) / "sentence_bert_config.json").read_text())
        return int(cfg.get("max_seq_length") or 256)
    except FileNotFoundError:
        return 256


class SentenceTransformersBackend:
    """The reference runtime: sentence-transformers on torch (CPU)."""

    def __init__(self, model_path: str, dimension: int, threads: int) -> None:
        _offline()
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        get_dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dimension = int(get_dim() or 0)
        if self.dimension != dimension:
            raise ModelMismatchError(
                f"model at {model_path!r} produces {self.dimension}-dimensional vectors but "
                f"EMBEDDING__DIMENSION is {dimension}"
            )

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=max(1, len(texts)),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


#: a text joins the current run while the run's padded width stays within this factor of
#: the text's own length (and a few tokens of slack for the shortest texts)
RUN_SLACK = 1.25
RUN_MIN_TOKENS = 8


def length_runs(lengths: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Rows grouped by token count, shortest first: ``(row indices, padded width)`` per
    run. A run grows while its longest text is ≤ ``RUN_SLACK`` times its shortest (+
    ``RUN_MIN_TOKENS``), so padding wastes at most about a quarter of a run's tokens."""
    order = np.argsort(lengths, kind="stable")
    runs: list[tuple[np.ndarray, int]] = []
    start = 0
    for i in range(1, len(order) + 1):
        if i == len(order) or lengths[order[i]] > (
            lengths[order[start]] * RUN_SLACK + RUN_MIN_TOKENS
        ):
            rows = order[start:i]
            runs.append((rows, int(max(1, lengths[rows].max()))))
            start = i
    return runs


class OnnxBackend:
    """onnxruntime + tokenizers; the same vectors as sentence-transformers (ADR 0015)."""

    def __init__(
        self, onnx_path: str, model_path: str, model_id: str, dimension: int, threads: int
    ) -> None:
        _offline()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if not os.path.isfile(onnx_path):
            raise ModelMismatchError(
                f"ONNX embedding model {onnx_path!r} does not exist (EMBEDDING__ONNX_PATH): "
                "export it from the packaged model with `make setup` or "
                "`python -m mnemo_memory.embed.export`, or set "
                "EMBEDDING__BACKEND=sentence-transformers; models are never downloaded"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle pool threads sleep instead of spinning: the cores are shared with the
        # event loop (and, on a small node, Redis)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            onnx_path, sess_options=opts, providers=["CPUExecutionProvider"]
        )
        meta = self.session.get_modelmeta().custom_metadata_map
        stored_id = meta.get(META_MODEL_ID)
        if stored_id is not None and stored_id != model_id:
            raise ModelMismatchError(
                f"ONNX model {onnx_path!r} was exported from {stored_id!r} but "
                f"EMBEDDING__MODEL_ID is {model_id!r}"
            )
        self.dimension = int(meta.get(META_DIMENSION) or self.session.get_outputs()[0].shape[-1])
        if self.dimension != dimension:
            raise ModelMismatchError(
                f"ONNX model {onnx_path!r} produces {self.dimension}-dimensional vectors but "
                f"EMBEDDING__DIMENSION is {dimension}"
            )
        tokenizer_file = Path(model_path) / "tokenizer.json"
        if not tokenizer_file.exists():
            raise ModelMismatchError(
                f"tokenizer {str(tokenizer_file)!r} does not exist (EMBEDDING__MODEL_PATH); "
                "models are never downloaded"
            )
        # read in Python (the GIL is released while the file is read), parse from memory:
        # Tokenizer.from_file holds the GIL through a slow read, stalling every RPC
        self.tokenizer = Tokenizer.from_str(tokenizer_file.read_text(encoding="utf-8"))
        max_len = int(meta.get(META_MAX_SEQ) or max_seq_length(model_path))
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id("[PAD]") or 0)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.variant = meta.get(META_VARIANT, "unknown")

    def encode(self, texts: list[str]) -> np.ndarray:
        """One model call per run of similar lengths (:func:`length_runs`): a batch pads
        every text to its longest, so a job's short facts beside its long message
        memories, or a query beside a document in the micro-batcher, would cost as much
        as long texts. Padding sits at the right and is masked, so trimming it is exact."""
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for rows, width in length_runs(mask.sum(axis=1)):
            out[rows] = self._run(ids[rows, :width], mask[rows, :width])
        return out

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        # mean pooling over real tokens, then L2 normalisation (sentence-transformers'
        # Pooling(mean) + Normalize modules)
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit
