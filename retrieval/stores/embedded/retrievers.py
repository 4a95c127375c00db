"""Retrievers over the on-disk passage index: BM25 on sparse matrices (bm25s) and dense search.

Both return Haystack Documents, so Haystack's DocumentJoiner fuses them (reciprocal rank fusion).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from haystack import Document, component

from retrieval.stores.embedded.index_folder import REBUILD_HINT, IndexDamagedError, IndexData
from retrieval.stores.protocol import passage_document
from retrieval.stores.terms import bm25_tokenizer

# bm25s logs each index build at DEBUG level on its own logger.
logging.getLogger("bm25s").setLevel(logging.WARNING)
# bm25s writes its vocabulary with orjson whenever orjson is installed (pymilvus installs it), and
# orjson refuses the integer keys bm25s itself puts there: keep bm25s on the standard json module.
bm25s.utils.json_functions.dumps = bm25s.utils.json_functions.dumps_with_builtin
bm25s.utils.json_functions.loads = json.loads


def build_bm25(texts: list[str], folder: Path) -> None:
    """Index `texts` with BM25 and save the index and its vocabulary to `folder`."""
    tokenizer = bm25_tokenizer()
    tokens = tokenizer.tokenize(texts, show_progress=False)
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    bm25.save(str(folder), show_progress=False)
    tokenizer.save_vocab(str(folder))


def row_document(index: IndexData, row: int, score: float) -> Document:
    """Passage `row` of the index, with its sentences' vectors (a view of the memory-mapped array)."""
    starts = index.sentence_starts
    vectors = index.sentence_embeddings[int(starts[row]) : int(starts[row + 1])]
    return passage_document(index.passages[row], vectors, score)


class LexicalIndex:
    """The saved bm25s index with its tokenizer, and the inverse document frequency of each term."""

    def __init__(self, folder: Path) -> None:
        self.bm25 = bm25s.BM25.load(str(folder), mmap=True)
        self.tokenizer = bm25_tokenizer()
        self.tokenizer.load_vocab(str(folder))
        indptr = np.asarray(self.bm25.scores["indptr"])
        document_frequency = np.diff(indptr)
        n = max(int(self.bm25.scores.get("num_docs", len(document_frequency))), 1)
        columns = {int(token): column for token, column in self.bm25.vocab_dict.items()}
        self._idf = np.zeros(len(self.tokenizer.word_to_id) + 1, dtype=np.float32)
        self._df = np.zeros_like(self._idf)
        for token, column in columns.items():
            if 0 <= token < self._idf.shape[0]:
                df = float(document_frequency[column])
                self._df[token] = df
                self._idf[token] = np.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def words(self) -> dict[str, int]:
        """Every word the indexed passages use (lower case, before stemming), with the number of
        passages holding its stem: the vocabulary that misspelt question words are corrected to."""
        stems = self.tokenizer.stem_to_sid
        found = {}
        for word, stem in self.tokenizer.word_to_stem.items():
            token = stems.get(stem)
            found[word] = int(self._df[token]) if token is not None and 0 <= token < self._df.shape[0] else 1
        return found

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Stemmed, stop-word-free term ids of each text (terms unknown to the index are dropped)."""
        return self.tokenizer.tokenize(texts, update_vocab=False, show_progress=False)

    def terms(self, texts: list[str]) -> list[set[int]]:
        """Each text's known terms, as term ids."""
        return [set(ids) - {0} for ids in self.token_ids(texts)]

    def idf(self, token_ids: set[int]) -> float:
        """The summed inverse document frequency of these terms."""
        return float(sum(self._idf[t] for t in token_ids if 0 < t < self._idf.shape[0]))


@component
class BM25PassageRetriever:
    """Keyword retrieval: BM25 scores from a memory-mapped bm25s index, stemmed, stop words removed."""

    def __init__(self, index: IndexData, top_k: int = 20) -> None:
        self.index = index
        self.top_k = top_k
        self.lexical: LexicalIndex | None = None

    def warm_up(self) -> None:
        if self.lexical is None and self.index.folder is not None and len(self.index):
            try:
                self.lexical = LexicalIndex(self.index.folder / "bm25")
            except (OSError, ValueError, KeyError) as exc:  # changed after its checksums were verified
                raise IndexDamagedError(
                    f"the BM25 index in {self.index.folder} cannot be read ({type(exc).__name__}): {REBUILD_HINT}"
                ) from exc

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        self.warm_up()
        if self.lexical is None:
            return {"documents": []}
        tokens = self.lexical.token_ids([query])
        if not any(tokens[0]):
            return {"documents": []}
        k = min(top_k or self.top_k, len(self.index))
        rows, scores = self.lexical.bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        found = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]
        return {"documents": [row_document(self.index, row, score) for row, score in found]}


@component
class DensePassageRetriever:
    """Embedding retrieval: one matrix product of normalised float32 passage embeddings with the query."""

    def __init__(self, index: IndexData, top_k: int = 20) -> None:
        self.index = index
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, query_embedding: Any, top_k: int | None = None) -> dict[str, list[Document]]:
        """`query_embedding`: a normalised vector (array or list of floats)."""
        matrix = self.index.passage_embeddings
        if not len(self.index):
            return {"documents": []}
        scores = matrix @ np.asarray(query_embedding, dtype=np.float32)
        rows = top_rows(scores, top_k or self.top_k)
        return {"documents": [row_document(self.index, int(r), float(scores[r])) for r in rows]}


def top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest scores, best first."""
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.zeros((0,), dtype=np.int64)
    candidates = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
    return candidates[np.argsort(-scores[candidates], kind="stable")]
