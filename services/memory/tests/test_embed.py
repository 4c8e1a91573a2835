"""The embedding runtime: offline from local files, the ONNX runtime agrees with the
sentence-transformers reference, concurrent callers share model calls and each gets its own
vector, the backend setting is honoured and a missing ONNX file is a clear error."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from mnemo_memory.embed import Embedder, ModelInfo
from mnemo_memory.errors import ModelMismatchError

#: short and long, questions and statements, numbers, dates, code, other scripts, emoji,
#: whitespace, and one longer than the model's 256-token window (truncation)
CORPUS = [
    "ok",
    "?",
    "I love my dog",
    "My puppy is great",
    "Tax law in 1990",
    "where do I live?",
    "What did Caroline research last spring?",
    "My sister Ana moved to Lisbon in March 2023 and works nights as a nurse.",
    "The meeting moved to Tuesday at 3pm because the CFO is travelling to Singapore.",
    "I'm allergic to peanuts and shellfish, so please never suggest satay or prawn curry.",
    "User's dentist recommended a standing desk (note 17)",
    "def add(a, b):\n    return a + b  # TODO: overflow?",
    "SELECT * FROM users WHERE id = 42;",
    "   leading and trailing spaces   ",
    "ALL CAPS SHOUTING ABOUT THE PARKING TICKET",
    "¿Dónde está la estación de tren más cercana?",
    "Ich wohne seit zwei Jahren in Berlin-Kreuzberg.",
    "東京で寿司を食べました",
    "Привет, как дела?",
    "We adopted a cat named Miso 🐱 and she hates the vacuum 🙀",
    "Call me at +44 20 7946 0958 after 18:30, or email ana@example.org",
    "3.14159 2.71828 1.41421",
    "the the the the the",
    "Remind me: passport expires 2027-08-14; renew 6 months before.",
    "I prefer oat milk in my coffee, never dairy.",
    "Mount Fuji was covered in clouds the whole day we hiked.",
    " ".join(f"word{i} and some filler text about the garden" for i in range(80)),
]


@pytest.fixture(scope="module")
def reference():
    """The sentence-transformers (torch) runtime: the reference the ONNX one must match."""
    model = Embedder(backend="sentence-transformers", threads=2)
    model.load()
    yield model
    model.close()


async def test_vectors_are_normalised_and_semantic(embedder):
    vecs = await embedder.encode(["I love my dog", "My puppy is great", "Tax law in 1990"])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    q1 = await embedder.encode_query("I love my dog")
    assert float(q1 @ vecs[0]) > 0.999
    assert await embedder.encode_query("I love my dog") is q1  # LRU hit


async def test_onnx_runtime_agrees_with_sentence_transformers(embedder, reference):
    assert embedder.backend == "onnx"
    ours = await embedder.encode(CORPUS)
    ref = await reference.encode(CORPUS)
    cosines = (ours * ref).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.99, f"{cosines.min():.4f} for {CORPUS[worst][:60]!r}"
    # and the same neighbours: each text's nearest other text is the reference's
    sims, ref_sims = ours @ ours.T, ref @ ref.T
    np.fill_diagonal(sims, -1)
    np.fill_diagonal(ref_sims, -1)
    assert (sims.argmax(axis=1) == ref_sims.argmax(axis=1)).mean() >= 0.95


async def test_one_text_alone_and_in_a_batch_get_the_same_vector(embedder):
    alone = await embedder.encode([CORPUS[7]])
    together = await embedder.encode(CORPUS)
    assert float(alone[0] @ together[7]) > 0.995


async def test_a_mixed_batch_runs_by_length_and_keeps_each_texts_vector(embedder):
    """Short facts beside long message memories: one model call per run of similar
    lengths (padding only to the run's longest), the rows back in the caller's order."""
    from mnemo_memory.embed.backends import RUN_MIN_TOKENS, RUN_SLACK, length_runs

    texts = [CORPUS[0] * 6, "likes tea", CORPUS[3], "", "x " * 400, CORPUS[5] * 3, "dog"]
    backend = embedder.load()
    widths: list[int] = []
    real_run = backend._run
    backend._run = lambda ids, mask: widths.append(ids.shape[1]) or real_run(ids, mask)
    try:
        mixed = await embedder.encode(texts)
    finally:
        backend._run = real_run
    alone = np.stack([(await embedder.encode([t]))[0] for t in texts])
    assert (mixed * alone).sum(axis=1).min() > 0.9999
    assert len(widths) > 1 and max(widths) == 256 and min(widths) < 16, widths
    lengths = np.array([3, 40, 41, 52, 60, 200, 256, 5])
    runs = length_runs(lengths)
    assert sorted(int(i) for rows, _ in runs for i in rows) == list(range(len(lengths)))
    for rows, width in runs:
        assert width == lengths[rows].max()
        assert width <= lengths[rows].min() * RUN_SLACK + RUN_MIN_TOKENS
    assert length_runs(np.array([], dtype=np.int64)) == []


async def test_concurrent_queries_share_model_calls_and_each_gets_its_own_vector(embedder):
    queries = [f"what do you remember about {t[:40]}? #{i}" for i, t in enumerate(CORPUS * 2)]
    solo = np.stack([(await embedder.encode([q]))[0] for q in queries])
    before = embedder.batches
    got = await asyncio.gather(*(embedder.encode_query(q) for q in queries))
    calls = embedder.batches - before
    # coalesced: the first query runs alone, the rest queue behind it and share calls
    assert calls <= 1 + -(-(len(queries) - 1) // embedder.batch_size), calls
    sims = np.stack(got) @ solo.T
    # each caller got the vector of its own query, not a neighbour's
    assert (sims.argmax(axis=1) == np.arange(len(queries))).all()
    assert sims.diagonal().min() > 0.99


async def test_a_request_larger_than_the_batch_spans_model_calls_in_order():
    small = Embedder(batch_size=4, threads=1, query_cache_size=0)
    try:
        before = small.batches
        texts = CORPUS[:11]
        vecs, one = await asyncio.gather(small.encode(texts), small.encode(["I love my dog"]))
        assert small.batches - before == 3  # 11 + 1 texts, at most 4 per call
        assert small._batcher.largest_batch == 4
        for i, text in enumerate(texts):
            assert float(vecs[i] @ (await small.encode([text]))[0]) > 0.995
        assert float(one[0] @ vecs[2]) > 0.995  # CORPUS[2] is "I love my dog"
    finally:
        small.close()


async def test_batch_wait_holds_a_batch_open_for_late_requests():
    waiting = Embedder(batch_size=32, threads=1, batch_wait_ms=100, query_cache_size=0)
    waiting._batcher.wait_s = 2.0  # the setting's range ends at 100 ms; a busy CI needs more
    try:
        await waiting.aload()
        before = waiting.batches
        first = asyncio.ensure_future(waiting.encode(["first"]))
        deadline = asyncio.get_running_loop().time() + 10
        while not waiting._batcher._queue.empty():  # the model thread has taken it...
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.005)
        assert not first.done()  # ...and holds its batch open
        second = await waiting.encode(["second"])
        await first
        assert waiting.batches - before == 1
        assert second.shape == (1, 384)
    finally:
        waiting.close()


async def test_sentence_transformers_backend_is_the_fallback(reference, embedder):
    from mnemo_common.settings import EmbeddingSettings

    class S:
        embedding = EmbeddingSettings(backend="sentence-transformers", onnx_path="/nonexistent")

    fallback = Embedder.from_settings(S())
    try:
        vec = await fallback.encode(["I love my dog"])  # no ONNX file needed
        assert type(fallback.load()).__name__ == "SentenceTransformersBackend"
        assert float(vec[0] @ (await embedder.encode(["I love my dog"]))[0]) > 0.99
    finally:
        fallback.close()


def test_backend_setting_is_validated_naming_it(monkeypatch):
    from mnemo_common.settings import SettingsError
    from mnemo_memory.config import build_settings

    monkeypatch.setenv("EMBEDDING__BACKEND", "sentence-transformers")
    assert build_settings().embedding.backend == "sentence-transformers"
    monkeypatch.setenv("EMBEDDING__BACKEND", "torchscript")
    with pytest.raises(SettingsError, match="EMBEDDING__BACKEND: Input should be 'onnx'"):
        build_settings()
    with pytest.raises(ValueError, match="EMBEDDING__BACKEND"):
        Embedder(backend="torchscript")


async def test_missing_onnx_file_is_a_clear_error(tmp_path):
    missing = Embedder(onnx_path=str(tmp_path / "nope.onnx"))
    try:
        with pytest.raises(ModelMismatchError, match=r"EMBEDDING__ONNX_PATH.*make setup"):
            missing.load()
        # an encode reports the same error to its caller instead of hanging
        with pytest.raises(ModelMismatchError, match="does not exist"):
            await missing.encode(["hello"])
    finally:
        missing.close()


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelMismatchError, match="never downloaded"):
        Embedder(model_path=str(tmp_path / "nope")).load()


@pytest.mark.parametrize("backend", ["onnx", "sentence-transformers"])
def test_dimension_mismatch_is_refused(backend):
    with pytest.raises(ModelMismatchError, match="EMBEDDING__DIMENSION"):
        Embedder(dimension=768, backend=backend).load()


def test_model_info_check_names_both_models():
    with pytest.raises(ModelMismatchError, match=r"other-model.*all-MiniLM-L6-v2"):
        ModelInfo("all-MiniLM-L6-v2", 384).check_against("other-model", 768, "store")


def test_threads_default_to_the_cpus_given():
    from mnemo_memory.embed import available_cpus

    auto, one = Embedder(threads=0), Embedder(threads=1)
    try:
        assert auto.threads == available_cpus() >= 1
        assert one.threads == 1
    finally:
        auto.close()
        one.close()


def test_setup_export_is_current_and_a_stale_file_is_not(tmp_path):
    """`make setup` runs the export every time; it must skip a file that is already the
    export of the packaged weights, and redo one that is not (other weights, truncated)."""
    import shutil

    from mnemo_memory.embed import default_model_path, default_onnx_path
    from mnemo_memory.embed.export import current, model_digest

    digest = model_digest(default_model_path())
    installed = default_onnx_path()
    assert current(installed, digest, "fp32"), f"{installed}: run make setup"
    assert not current(installed, "0" * 64, "fp32")  # exported from other weights
    assert not current(installed, digest, "int8")  # another variant
    truncated = tmp_path / "truncated.onnx"
    with open(installed, "rb") as src, open(truncated, "wb") as dst:
        dst.write(src.read(1 << 20))
    assert not current(str(truncated), digest, "fp32")
    assert not current(str(tmp_path / "absent.onnx"), digest, "fp32")
    copy = tmp_path / "copy.onnx"
    shutil.copy(installed, copy)
    assert current(str(copy), digest, "fp32")
