"""The ONNX Runtime path gives the same vectors as sentence-transformers, for the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.engine import QAEngine
from retrieval.models.embedders import OnnxEmbedder
from retrieval.models.resolve import resolve_model
from tests.conftest import make_settings

TEXTS = [
    "Who declared the talks dead?",
    "President Donald Trump declared the talks “dead” in September.",
    "x",
]


def test_onnx_embeddings_match_sentence_transformers(tmp_path):
    from sentence_transformers import SentenceTransformer

    model_path = resolve_model("sentence-transformers/all-MiniLM-L6-v2").path
    reference = SentenceTransformer(str(model_path), device="cpu").encode(TEXTS, normalize_embeddings=True)
    onnx = OnnxEmbedder(model_path, tmp_path / "onnx").embed(TEXTS, batch_size=2)
    assert onnx.shape == reference.shape == (3, 384)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(onnx * reference, axis=1)) > 0.9999


def test_torch_backend_reads_an_index_of_float_onnx_vectors(tmp_path):
    from tests.conftest import SEED_ARTICLE

    QAEngine(make_settings(tmp_path / "index", models={"quantize": False})).index_paths([SEED_ARTICLE])
    torch_engine = QAEngine(make_settings(tmp_path / "index", models={"embedding_backend": "torch"}))
    answer = torch_engine.ask("Who declared the talks dead?")
    assert "Donald Trump" in answer.text
    assert answer.kind == "sentence"


def test_int8_index_is_not_read_with_float_vectors(seed_index_dir):
    from retrieval.stores.embedded.index_folder import IndexDamagedError

    with pytest.raises(IndexDamagedError, match="int8"):
        QAEngine(make_settings(seed_index_dir, models={"quantize": False})).ask("Who declared the talks dead?")


def test_int8_model_keeps_the_float_model_ranking(tmp_path):
    model_path = resolve_model("sentence-transformers/all-MiniLM-L6-v2").path
    float_vectors = OnnxEmbedder(model_path, tmp_path).embed(TEXTS)
    int8_vectors = OnnxEmbedder(model_path, tmp_path, quantize=True).embed(TEXTS)
    assert np.min(np.sum(float_vectors * int8_vectors, axis=1)) > 0.85
    assert np.argmax(int8_vectors[1:] @ int8_vectors[0]) == np.argmax(float_vectors[1:] @ float_vectors[0])
