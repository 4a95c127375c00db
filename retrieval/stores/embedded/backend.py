"""The embedded backend (the default): the index folder of `retrieval/stores/embedded/index_folder.py` on this machine.

BM25 runs on bm25s's sparse matrices, dense search is one matrix product over memory-mapped
float32 vectors, and Haystack's DocumentJoiner fuses the two (reciprocal rank fusion). Every write
is a new generation made live atomically; one writer at a time holds the folder's lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document
from haystack.components.joiners import DocumentJoiner

from retrieval.errors import IndexMissingError, QabotError
from retrieval.files import display_path
from retrieval.stores.embedded.index_folder import IndexData, IndexWriteError, index_exists, load_index, save_index
from retrieval.stores.embedded.retrievers import (
    BM25PassageRetriever,
    DensePassageRetriever,
    build_bm25,
    row_document,
)
from retrieval.stores.protocol import Lexicon, StoreUpdate
from retrieval.stores.terms import passage_search_text
from retrieval.stores.writer_lock import take_writer_lock


class _Ports:
    def __init__(self, bm25: BM25PassageRetriever) -> None:
        self.query_inputs, self.embedding_inputs = ["bm25.query"], ["dense.query_embedding"]
        self.output = "joiner.documents"
        self._bm25 = bm25

    def lexicon(self) -> Lexicon | None:
        """The BM25 index of the generation this pipeline retrieves from (not a newer one)."""
        self._bm25.warm_up()
        return self._bm25.lexical


class EmbeddedStore:
    """The passage index in `index_dir`, loaded once (embeddings memory-mapped) and reloaded after a write."""

    backend = "embedded"

    def __init__(self, index_dir: Path, embedding_id: str, dimension: int) -> None:
        self.index_dir = index_dir
        self.embedding_id = embedding_id
        self.dimension = dimension
        self.location = display_path(index_dir)
        self._data: IndexData | None = None

    # ----------------------------------------------------------------- reading
    @property
    def data(self) -> IndexData:
        """The live generation, checked against its manifest and the embedding model."""
        if self._data is None:
            if not self.index_dir.is_dir():
                raise IndexMissingError(
                    f"index folder {self.index_dir} does not exist: build it with `qabot index PATH...`", exit_code=2
                )
            if not index_exists(self.index_dir):
                raise IndexMissingError(
                    f"no index in {self.index_dir}: build it with `qabot index PATH...`", exit_code=2
                )
            self._data = load_index(self.index_dir, self.embedding_id)
        return self._data

    def exists(self) -> bool:
        return index_exists(self.index_dir)

    def check(self) -> None:
        _ = self.data

    def count(self) -> int:
        return len(self.data)

    def sources(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.sources) if self.exists() else {}

    def titles(self, n: int) -> list[str]:
        return list(dict.fromkeys(p.title for p in self.data.passages if p.title))[:n]

    def passages_of(self, source: str) -> list[Document]:
        data = self.data
        return [row_document(data, row, 0.0) for row, p in enumerate(data.passages) if p.source == source]

    # ----------------------------------------------------------------- retrieval
    def add_retrieval(self, pipeline: Any, candidates: int, top_k: int) -> _Ports:
        """BM25 and dense retrieval over the loaded index, fused by reciprocal rank."""
        data = self.data
        bm25 = BM25PassageRetriever(data, top_k=candidates)
        pipeline.add_component("bm25", bm25)
        pipeline.add_component("dense", DensePassageRetriever(data, top_k=candidates))
        pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=2 * top_k))
        pipeline.connect("bm25.documents", "joiner.documents")
        pipeline.connect("dense.documents", "joiner.documents")
        return _Ports(bm25)

    # ----------------------------------------------------------------- writing
    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """The index folder's lock; a folder made for a write that wrote nothing is removed again."""
        fresh = not self.index_dir.exists()
        lock_file = self.index_dir / ".lock"
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            lock = take_writer_lock(lock_file, display_path(self.index_dir))
        except OSError as exc:
            raise IndexWriteError(self.index_dir, exc) from exc
        try:
            yield
        finally:
            lock.release()
            if fresh and not index_exists(self.index_dir):  # leave no empty index folder behind
                with contextlib.suppress(OSError):
                    lock_file.unlink(missing_ok=True)
                    self.index_dir.rmdir()

    def write(self, update: StoreUpdate, progress: Callable[[str, int, int], None]) -> None:
        old = None if update.rebuild or not self.exists() else self.data
        data = merged(old, update, self.embedding_id, self.dimension)
        if not data.passages:  # a BM25 index of nothing cannot be built: an index is never emptied
            raise QabotError(
                "that would remove every article from the index: to start over, index again with "
                "`qabot index --rebuild PATH...`, or delete the index folder",
                exit_code=2,
            )
        texts = [passage_search_text(p) for p in data.passages]
        progress("writing the index", 0, 1)
        save_index(self.index_dir, data, write_extra=lambda folder: build_bm25(texts, folder / "bm25"))
        progress("writing the index", 1, 1)
        self._data = None


def merged(old: IndexData | None, update: StoreUpdate, embedding_id: str, dimension: int) -> IndexData:
    """`old` without the passages of replaced sources, then the update's passages, vectors aligned."""
    data = IndexData.empty(embedding_id, dimension)
    kept_rows = [] if old is None else [i for i, p in enumerate(old.passages) if p.source not in update.replaced]
    new_rows = np.repeat(
        np.arange(len(update.passages), dtype=np.int32) + len(kept_rows),
        [len(p.sentence_spans) for p in update.passages],
    ).astype(np.int32)
    if old is not None and kept_rows:
        kept = np.asarray(kept_rows)
        remap = np.full(len(old.passages), -1, dtype=np.int32)
        remap[kept] = np.arange(len(kept), dtype=np.int32)
        sentence_keep = np.isin(old.sentence_rows, kept)
        old_passage_vectors = np.asarray(old.passage_embeddings[kept])
        old_sentence_vectors = np.asarray(old.sentence_embeddings[sentence_keep])
        old_rows = remap[np.asarray(old.sentence_rows[sentence_keep])]
    else:
        old_passage_vectors = np.zeros((0, dimension), np.float32)
        old_sentence_vectors = np.zeros((0, dimension), np.float32)
        old_rows = np.zeros((0,), np.int32)
    data.passages = [old.passages[i] for i in kept_rows] if old else []
    data.passages += update.passages
    data.passage_embeddings = np.vstack([old_passage_vectors, update.passage_vectors]).astype(np.float32)
    data.sentence_embeddings = np.vstack([old_sentence_vectors, update.sentence_vectors]).astype(np.float32)
    data.sentence_rows = np.concatenate([old_rows, new_rows]).astype(np.int32)
    data.sources = update.sources
    return data
