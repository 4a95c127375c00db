"""Retrievers over the on-disk passage index: BM25 on sparse matrices (bm25s) and dense search.

Both return Haystack Documents, so Haystack's DocumentJoiner fuses them (reciprocal rank fusion).
"""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from haystack import Document, component

from retrieval.store import IndexData, PassageRecord


def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def _bm25_tokenizer() -> bm25s.tokenization.Tokenizer:
    return bm25s.tokenization.Tokenizer(stopwords="en", stemmer=_stemmer())


def passage_search_text(passage: PassageRecord) -> str:
    """What the retrievers see of a passage: its article title, then its text."""
    return f"{passage.title}\n{passage.content}"


def build_bm25(texts: list[str], folder: Path) -> None:
    """Index `texts` with BM25 and save the index and its vocabulary to `folder`."""
    tokenizer = _bm25_tokenizer()
    tokens = tokenizer.tokenize(texts, show_progress=False)
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    bm25.save(str(folder), show_progress=False)
    tokenizer.save_vocab(str(folder))


def passage_document(index: IndexData, row: int, score: float) -> Document:
    passage = index.passages[row]
    meta = {"title": passage.title, "source": passage.source, "row": row}
    return Document(id=passage.id, content=passage.content, meta=meta, score=score)


@component
class BM25PassageRetriever:
    """Keyword retrieval: BM25 scores from a memory-mapped bm25s index, stemmed, stop words removed."""

    def __init__(self, index: IndexData, top_k: int = 20) -> None:
        self.index = index
        self.top_k = top_k
        self._bm25: bm25s.BM25 | None = None
        self._tokenizer: bm25s.tokenization.Tokenizer | None = None

    def warm_up(self) -> None:
        if self._bm25 is None and self.index.folder is not None and len(self.index):
            folder = str(self.index.folder / "bm25")
            self._bm25 = bm25s.BM25.load(folder, mmap=True)
            self._tokenizer = _bm25_tokenizer()
            self._tokenizer.load_vocab(folder)

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        self.warm_up()
        if self._bm25 is None or self._tokenizer is None:
            return {"documents": []}
        tokens = self._tokenizer.tokenize([query], update_vocab=False, show_progress=False)
        k = min(top_k or self.top_k, len(self.index))
        rows, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        found = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]
        return {"documents": [passage_document(self.index, row, score) for row, score in found]}


@component
class DensePassageRetriever:
    """Embedding retrieval: one matrix product of normalised float32 passage embeddings with the query."""

    def __init__(self, index: IndexData, top_k: int = 20) -> None:
        self.index = index
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, query_embedding: list[float], top_k: int | None = None) -> dict[str, list[Document]]:
        matrix = self.index.passage_embeddings
        if not len(self.index):
            return {"documents": []}
        scores = matrix @ np.asarray(query_embedding, dtype=np.float32)
        rows = top_rows(scores, top_k or self.top_k)
        return {"documents": [passage_document(self.index, int(r), float(scores[r])) for r in rows]}


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest scores, best first."""
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.zeros((0,), dtype=np.int64)
    candidates = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
    return candidates[np.argsort(-scores[candidates], kind="stable")]
