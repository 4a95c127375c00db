"""The embedding model through ONNX Runtime: same weights, a fraction of the start-up time.

Importing sentence-transformers and torch takes seconds; ONNX Runtime and `tokenizers` take a
fraction of one. The model is exported once from its sentence-transformers folder (with torch,
already installed) into a cache folder, then every process loads the `.onnx` file directly.
Pooling and normalisation follow the model's own sentence-transformers config.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from haystack import Document, component

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _model_key(model_path: Path) -> str:
    """A cache key that changes when the model's weights or config change."""
    digest = hashlib.sha256(str(model_path.resolve()).encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        path = model_path / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return f"{model_path.name}-{digest.hexdigest()[:16]}"


def onnx_model(model_path: Path, cache_dir: Path, quantize: bool) -> Path:
    """The ONNX file to run: the export, or its int8 dynamic quantisation (made once, in a second)."""
    exported = export_onnx(model_path, cache_dir)
    if not quantize:
        return exported
    target = exported.with_name("model.int8.onnx")
    if not target.is_file():
        with FileLock(str(target.parent / ".lock")):
            if not target.is_file():
                from onnxruntime.quantization import QuantType, quantize_dynamic

                temporary = target.with_suffix(".tmp")
                # The quantiser logs advice through the root logger, which would also install a
                # root handler behind the front end's back; give it a silent one meanwhile.
                root, silent = logging.getLogger(), logging.NullHandler()
                root.addHandler(silent)
                try:
                    quantize_dynamic(str(exported), str(temporary), weight_type=QuantType.QInt8)
                finally:
                    root.removeHandler(silent)
                os.replace(temporary, target)
    return target


def export_onnx(model_path: Path, cache_dir: Path) -> Path:
    """The ONNX file for the transformer in `model_path`, exported on first use (a few seconds)."""
    target = cache_dir / _model_key(model_path) / "model.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / ".lock")):
        if target.is_file():
            return target
        import warnings

        import torch
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
        # Eager attention exports to the plain MatMul/Softmax pattern that ONNX Runtime fuses.
        model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()

        class _LastHiddenState(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.inner(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        example = torch.ones((2, 8), dtype=torch.long)
        temporary = target.with_suffix(".onnx.tmp")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHiddenState(model),
                (example, example, torch.zeros_like(example)),
                str(temporary),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*_INPUTS, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        os.replace(temporary, target)
    return target


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
            import onnxruntime
            from tokenizers import Tokenizer

            options = onnxruntime.SessionOptions()
            if self.threads:
                options.intra_op_num_threads = self.threads
            options.log_severity_level = 3
            path = onnx_model(self.model_path, self.cache_dir, self.quantize)
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
            self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

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
