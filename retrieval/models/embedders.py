"""The embedding model through ONNX Runtime: same weights, a fraction of the start-up time.

Importing sentence-transformers and torch takes seconds; ONNX Runtime and `tokenizers` take a
fraction of one. The model is exported once from its sentence-transformers folder (see
`retrieval/models/onnx.py`), then every process loads the `.onnx` file directly.
Pooling and normalisation follow the model's own sentence-transformers config.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, component

from retrieval.models.onnx import load_onnx


@dataclass(frozen=True)
class TokenVectors:
    """The contextual vectors of a text's tokens (special tokens left out), each of unit length."""

    ids: np.ndarray  # (tokens,) vocabulary ids
    offsets: np.ndarray  # (tokens, 2) character span of each token in the text
    vectors: np.ndarray  # (tokens, dimension) float32


class OnnxEmbedder:
    """Sentence embeddings (and token vectors) from an ONNX export of a sentence-transformers model."""

    def __init__(self, model_path: Path, cache_dir: Path, threads: int = 0, quantize: bool = False) -> None:
        self.model_path = Path(model_path)
        self.cache_dir = Path(cache_dir)
        self.threads = threads
        self.quantize = quantize
        self._session: Any = None
        self._tokenizer: Any = None
        self._long_tokenizer: Any = None
        self._lock = threading.Lock()

    def _settings(self) -> tuple[str, bool, int]:
        pooling_config = self.model_path / "1_Pooling" / "config.json"
        pooling = "mean"
        if pooling_config.is_file():
            config = json.loads(pooling_config.read_text())
            pooling = "cls" if config.get("pooling_mode_cls_token") else "mean"
        modules = self.model_path / "modules.json"
        normalize = not modules.is_file() or "Normalize" in modules.read_text()
        bert_config = self.model_path / "sentence_bert_config.json"
        max_length = json.loads(bert_config.read_text()).get("max_seq_length", 256) if bert_config.is_file() else 256
        return pooling, normalize, int(max_length)

    def warm_up(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            from tokenizers import Tokenizer

            self._pooling, self._normalize, max_length = self._settings()
            tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
            tokenizer.enable_truncation(max_length=max_length)
            tokenizer.enable_padding()
            self._tokenizer = tokenizer
            # Token vectors read whole passages: up to the model's position limit, not the pooling limit.
            config = json.loads((self.model_path / "config.json").read_text())
            long_tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
            long_tokenizer.enable_truncation(max_length=int(config.get("max_position_embeddings", max_length)))
            long_tokenizer.enable_padding()
            self._long_tokenizer = long_tokenizer
            self._session = load_onnx(self.model_path, self.cache_dir, self.quantize, threads=self.threads)

    @property
    def tokenizer(self) -> Any:
        self.warm_up()
        return self._tokenizer

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Embeddings of `texts`, one float32 row each (normalised if the model says so)."""
        self.warm_up()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        # Similar lengths in a batch waste less work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in chunk])
            hidden = self._hidden_states(encodings)
            for i, row in zip(chunk, self._pool(encodings, hidden), strict=True):
                rows[i] = row
        return np.vstack(rows).astype(np.float32)

    def embed_with_tokens(self, text: str) -> tuple[np.ndarray, TokenVectors]:
        """The embedding of `text` and its token vectors, from one run of the model."""
        self.warm_up()
        encodings = self._tokenizer.encode_batch([text])
        hidden = self._hidden_states(encodings)
        return self._pool(encodings, hidden)[0].astype(np.float32), self._tokens(encodings[0], hidden[0])

    def _hidden_states(self, encodings: list[Any]) -> np.ndarray:
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return self._session.run(None, feeds)[0]

    def _pool(self, encodings: list[Any], hidden: np.ndarray) -> np.ndarray:
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)[..., None]
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        if self._normalize:
            pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled

    @staticmethod
    def _tokens(encoding: Any, states: np.ndarray) -> TokenVectors:
        keep = np.flatnonzero(
            np.array(encoding.attention_mask, dtype=bool) & ~np.array(encoding.special_tokens_mask, dtype=bool)
        )
        vectors = states[keep].astype(np.float32)
        vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)[keep]
        return TokenVectors(np.array(encoding.ids, dtype=np.int64)[keep], offsets, vectors)

    def token_vectors(self, texts: list[str]) -> list[TokenVectors]:
        """Each text's token vectors, read in one batch (texts longer than the model's limit are cut)."""
        self.warm_up()
        if not texts:
            return []
        encodings = self._long_tokenizer.encode_batch(texts)
        hidden = self._hidden_states(encodings)
        return [self._tokens(encoding, states) for encoding, states in zip(encodings, hidden, strict=True)]


@component
class OnnxTextEmbedder:
    """Embeds a query string (the Haystack text-embedder interface)."""

    def __init__(self, embedder: OnnxEmbedder) -> None:
        self.embedder = embedder

    def warm_up(self) -> None:
        self.embedder.warm_up()

    @component.output_types(embedding=np.ndarray, tokens=TokenVectors)
    def run(self, text: str) -> dict[str, Any]:
        """The embedding of `text` and, for the sentence reader, its token vectors."""
        # An array, not a list: the pipeline copies component inputs, and a list of 384 floats
        # is copied float by float.
        embedding, tokens = self.embedder.embed_with_tokens(text)
        return {"embedding": embedding, "tokens": tokens}


@component
class OnnxDocumentEmbedder:
    """Embeds Documents, optionally prefixing meta fields (as SentenceTransformersDocumentEmbedder)."""

    def __init__(
        self, embedder: OnnxEmbedder, meta_fields_to_embed: list[str] | None = None, batch_size: int = 32
    ) -> None:
        self.embedder = embedder
        self.meta_fields_to_embed = meta_fields_to_embed or []
        self.batch_size = batch_size

    def warm_up(self) -> None:
        self.embedder.warm_up()

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        texts = [
            "\n".join([*(str(d.meta[f]) for f in self.meta_fields_to_embed if d.meta.get(f)), d.content or ""])
            for d in documents
        ]
        vectors = self.embedder.embed(texts, batch_size=self.batch_size)
        from dataclasses import replace

        return {"documents": [replace(d, embedding=v.tolist()) for d, v in zip(documents, vectors, strict=True)]}
