"""Searching the Milvus collections: the retriever component fusing BM25 and dense search, the
term rarity the re-ranker reads, and the terms both count."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from haystack import Document, component

from retrieval.stores.milvus.vectors import unpack_vectors
from retrieval.stores.protocol import Lexicon, PassageRecord, passage_document
from retrieval.stores.terms import STOPWORDS, stemmer

_RRF_K = 60
# Milvus's RRF scores 1/(60 + rank from 1); Haystack's joiner (the embedded backend) scales the same
# sum by 61/2, so that a passage first in both lists scores 1.0. The re-ranker uses that scale.
_RRF_SCALE = 61 / 2
_OUTPUT = ["id", "content", "title", "source", "published", "url", "spans", "vectors"]
PASSAGE_FIELDS = tuple(_OUTPUT)  # what a passage row gives the question pipeline


class SearchedStore(Protocol):
    """What searching needs of the store (`MilvusStore`)."""

    collection: str
    terms: str

    def tokenize(self, texts: list[str]) -> list[set[str]]: ...

    def call(self, request: Callable[[Any], Any], doing: str) -> Any: ...

    def ensure_loaded(self) -> None: ...

    def document(self, entity: dict[str, Any], score: float) -> Document: ...


class Terms:
    """Stemmed, stop-word-free terms, exactly as the embedded backend's BM25 tokenizer (bm25s's
    defaults: lower case, words of two or more characters, stop words out, then the stemmer)."""

    _WORDS = re.compile(r"(?u)\b\w\w+\b")

    def __init__(self) -> None:
        self._stem = stemmer().stemWord
        self._stopwords = STOPWORDS
        self._stems: dict[str, str] = {}

    def __call__(self, texts: list[str]) -> list[set[str]]:
        stems = self._stems
        out = []
        for text in texts:
            terms = set()
            for word in self._WORDS.findall(text.lower()):
                if word in self._stopwords:
                    continue
                stem = stems.get(word)
                if stem is None:
                    stem = stems[word] = self._stem(word)
                    if len(stems) > 200_000:
                        stems.clear()
                terms.add(stem)
            out.append(terms)
        return out


class MilvusLexicon:
    """Term rarity from the `_terms` table: the same idf as the embedded backend's BM25 index."""

    def __init__(self, store: SearchedStore, passages: int) -> None:
        self.store = store
        self.passages = max(passages, 1)
        self._idf: dict[str, float] = {}

    def terms(self, texts: list[str]) -> list[set[str]]:
        return self.store.tokenize(texts)

    def _load(self, terms: set[str]) -> None:
        missing = [t for t in terms if t not in self._idf]
        if not missing:
            return
        found = self.store.call(
            lambda client: client.get(self.store.terms, ids=missing, output_fields=["df"]), "reading term counts"
        )
        n = self.passages
        counts = {row["id"]: int(row["df"]) for row in found}
        for term in missing:
            df = counts.get(term, 0)
            self._idf[term] = math.log(1.0 + (n - df + 0.5) / (df + 0.5)) if df > 0 else 0.0

    def idf(self, terms: set[str]) -> float:
        self._load(terms)
        return float(sum(self._idf.get(t, 0.0) for t in terms))


def hit_document(entity: dict[str, Any], score: float, dimension: int) -> Document:
    """A passage row that a search returned (the `_OUTPUT` fields), as the question pipeline takes it."""
    spans = list(entity.get("spans") or [])
    record = PassageRecord(
        id=entity["id"],
        content=entity["content"],
        title=entity.get("title", ""),
        source=entity.get("source", ""),
        sentence_spans=spans,
        published=entity.get("published", ""),
        url=entity.get("url", ""),
    )
    return passage_document(record, unpack_vectors(entity["vectors"], len(spans), dimension), score)


@component
class MilvusPassageRetriever:
    """BM25 (Milvus's BM25 function over the passage text) and dense search, fused by Milvus's RRF.

    Each list has `candidates` passages; the `top_k` fused best come back as the embedded backend's
    retrievers and joiner give them, sentence spans and vectors in meta.
    """

    def __init__(self, store: SearchedStore, candidates: int = 20, top_k: int = 10) -> None:
        self.store = store
        self.candidates = candidates
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, query: str, query_embedding: Any) -> dict[str, list[Document]]:
        from pymilvus import AnnSearchRequest, RRFRanker

        vector = [float(x) for x in np.asarray(query_embedding, dtype=np.float32)]
        requests = [
            AnnSearchRequest(data=[vector], anns_field="vector", param={"metric_type": "COSINE"}, limit=self.candidates)
        ]
        if any(self.store.tokenize([query])[0]):  # BM25 on a query without a known term finds nothing
            requests.append(
                AnnSearchRequest(
                    data=[query], anns_field="sparse", param={"metric_type": "BM25"}, limit=self.candidates
                )
            )
        self.store.ensure_loaded()
        hits = self.store.call(
            lambda client: client.hybrid_search(
                self.store.collection,
                requests,
                ranker=RRFRanker(_RRF_K),
                limit=self.top_k,
                output_fields=_OUTPUT,
            ),
            "searching",
        )
        return {"documents": [self.store.document(hit["entity"], hit["distance"] * _RRF_SCALE) for hit in hits[0]]}


class Ports:
    """Where the question pipeline plugs into the `milvus` retriever component."""

    def __init__(self, lexicon: Callable[[], Lexicon | None]) -> None:
        self.query_inputs, self.embedding_inputs = ["milvus.query"], ["milvus.query_embedding"]
        self.output = "milvus.documents"
        self.lexicon = lexicon
