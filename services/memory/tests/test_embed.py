"""The embedding model loads offline from its local path; a wrong model is refused."""

from __future__ import annotations

import numpy as np
import pytest
from mnemo_memory.embed import Embedder, ModelInfo
from mnemo_memory.errors import ModelMismatchError


async def test_vectors_are_normalised_and_semantic(embedder):
    vecs = await embedder.encode(["I love my dog", "My puppy is great", "Tax law in 1990"])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    q1 = await embedder.encode_query("I love my dog")
    assert np.allclose(q1, vecs[0], atol=1e-5)
    assert await embedder.encode_query("I love my dog") is q1  # LRU hit


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelMismatchError, match="never downloaded"):
        Embedder(model_path=str(tmp_path / "nope")).load()


def test_dimension_mismatch_is_refused():
    with pytest.raises(ModelMismatchError, match="EMBEDDING__DIMENSION"):
        Embedder(dimension=768).load()


def test_model_info_check_names_both_models():
    with pytest.raises(ModelMismatchError, match=r"other-model.*all-MiniLM-L6-v2"):
        ModelInfo("all-MiniLM-L6-v2", 384).check_against("other-model", 768, "store")
