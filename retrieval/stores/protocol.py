"""The one seam between the engine and where passages live: `PassageStore`.

Two backends implement it: `EmbeddedStore` (the index folder of `retrieval/stores/embedded/index_folder.py`: bm25s and
memory-mapped numpy arrays, the default) and `MilvusStore` (a Milvus collection: Milvus Lite on a
local path, or a Milvus server or cluster at `http://host:19530`). The rest of the engine does not
know which one it talks to: the writer hands a store the passages and vectors it computed, and
the question pipeline asks the store for its retrieval components, whose Documents carry
everything answering needs (see `PASSAGE_META`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from haystack import Document

# What each retrieved Document's meta holds, on every backend: title, source, published, url and
# "sentences" (a PassageSentences), so that re-ranking and answering are the same everywhere.
PASSAGE_META = ("title", "source", "published", "url", "sentences")


@dataclass
class PassageRecord:
    id: str
    content: str
    title: str
    source: str
    sentence_spans: list[list[int]]
    # The article's date (YYYY-MM-DD) and web address; indexes written before them load with "".
    published: str = ""
    url: str = ""

    def sentences(self) -> list[str]:
        return [self.content[start:end] for start, end in self.sentence_spans]


@dataclass(frozen=True, eq=False)
class PassageSentences:
    """A passage's sentence spans (character offsets) and their normalised float32 vectors.

    Read-only, so it is shared rather than copied when Haystack copies a component's input
    Documents (copying these arrays and lists for 40 candidates cost 40 ms a question).
    """

    spans: list[list[int]]
    vectors: np.ndarray

    def __deepcopy__(self, memo: dict[int, Any]) -> PassageSentences:
        return self


def passage_document(passage: PassageRecord, sentence_vectors: np.ndarray, score: float) -> Document:
    """A retrieved passage as the question pipeline takes it."""
    meta: dict[str, Any] = {
        "title": passage.title,
        "source": passage.source,
        "sentences": PassageSentences(passage.sentence_spans, sentence_vectors),
    }
    if passage.published or passage.url:
        meta.update(published=passage.published, url=passage.url)
    return Document(id=passage.id, content=passage.content, meta=meta, score=score)


class Lexicon(Protocol):
    """Terms and their rarity, for re-ranking sentences by the question's terms they contain."""

    def terms(self, texts: list[str]) -> list[set[Any]]:
        """Each text's terms (stemmed, stop words removed; terms the index has never seen dropped)."""
        ...

    def idf(self, terms: set[Any]) -> float:
        """The summed inverse document frequency of `terms`."""
        ...


@dataclass
class StoreUpdate:
    """One write: passages to add with their vectors, sources whose old passages go, the new source table."""

    passages: list[PassageRecord]
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray  # every new passage's sentences, in order
    replaced: set[str]  # sources whose stored passages are removed first
    sources: dict[str, dict[str, Any]]  # the whole source table after the write
    rebuild: bool = False
    removed_passages: int = field(default=0)


class RetrievalPorts(Protocol):
    """Where the question pipeline plugs into a backend's retrieval components."""

    query_inputs: list[str]  # sockets taking the search text
    embedding_inputs: list[str]  # sockets taking the query embedding
    output: str  # the socket giving the fused candidate Documents
    lexicon: Callable[[], Lexicon | None]  # term rarity for the re-ranker, from the same index


class PassageStore(Protocol):
    """A place that keeps passages, their vectors and the source table, and retrieves from them."""

    backend: str
    location: str  # where it is, for messages (a folder, or a Milvus URI and collection)

    def exists(self) -> bool:
        """Whether an index has been written here."""
        ...

    def check(self) -> None:
        """Raise a QabotError when the index is unusable (damaged, another embedding model)."""
        ...

    def count(self) -> int: ...

    def sources(self) -> dict[str, dict[str, Any]]:
        """The source table: per article, its file hash, title, passage count and web metadata."""
        ...

    def titles(self, n: int) -> list[str]:
        """Up to `n` article titles, for example questions."""
        ...

    def passages_of(self, source: str) -> list[Document]:
        """Every passage of one article, in order, as retrieval gives them (score 0); [] for none."""
        ...

    def write(self, update: StoreUpdate, progress: Callable[[str, int, int], None]) -> None:
        """Apply `update`; when it fails, what was there before is still there."""
        ...

    def add_retrieval(self, pipeline: Any, candidates: int, top_k: int) -> RetrievalPorts:
        """Add this backend's retrieval components (BM25 and dense, fused) to `pipeline`."""
        ...

    def writer_lock(self) -> Any:
        """A context manager held while writing; raises QabotError when another writer holds it."""
        ...
