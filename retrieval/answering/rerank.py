"""Re-ranking fused passages by their best sentence, which also picks the evidence sentence.

A passage is as good as its best sentence: the cosine of the question with the sentence's
(precomputed) embedding, plus the share of the question's terms, weighted by rarity, that the
sentence contains. Sentence-level evidence separates neighbouring passages that whole-passage
retrieval confuses.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import numpy as np
from haystack import Document, component

from retrieval.stores.protocol import Lexicon


@component
class SentenceEvidenceRanker:
    """Orders passages by best-sentence score; each passage's meta gets `best_sentence` and `sentence_score`.

    `sentence_score` is in 0..1: (cosine + lexical_weight * term overlap) / (1 + lexical_weight).
    The top `top_k` passages are returned, passages of a source not yet listed first, so that five
    passages show five places rather than five slices of one. Near ties go to the newer article
    (`newest_first_among_ties`). `lexicon()` gives the store's `Lexicon` (None: cosines only).
    The terms of each passage's sentences are kept for the last `cache` passages, as long as the
    store gives the same lexicon: a passage's terms only change with the index.
    """

    def __init__(
        self,
        lexicon: Any = None,
        embedder: Any = None,
        top_k: int = 5,
        lexical_weight: float = 0.5,
        prior_weight: float = 0.5,
        recency_margin: float = 0.0,
        cache: int = 2048,
    ) -> None:
        self.lexicon = lexicon
        self.embedder = embedder
        self.top_k = top_k
        self.lexical_weight = lexical_weight
        self.prior_weight = prior_weight
        self.recency_margin = recency_margin
        self.cache = cache
        self._terms: OrderedDict[str, list[set[Any]]] = OrderedDict()
        self._terms_of: Lexicon | None = None  # the lexicon the kept terms come from
        self._terms_lock = threading.Lock()

    def _sentence_terms(self, lexical: Lexicon, document: Document) -> list[set[Any]]:
        """The terms of each sentence of `document`, from the cache where it has them."""
        with self._terms_lock:
            if lexical is not self._terms_of:
                self._terms.clear()
                self._terms_of = lexical
            found = self._terms.get(document.id)
            if found is not None:
                self._terms.move_to_end(document.id)
                return found
        content = document.content or ""
        terms = lexical.terms([content[a:b] for a, b in document.meta["sentences"].spans])
        with self._terms_lock:
            if lexical is self._terms_of:
                self._terms[document.id] = terms
                while len(self._terms) > self.cache:
                    self._terms.popitem(last=False)
        return terms

    def _query_vector(self, query_embedding: Any, question: str, context: str) -> np.ndarray:
        if context and self.embedder is not None:
            query_embedding = self.embedder.run(text=f"{question} ({context})")["embedding"]
        return np.asarray(query_embedding, dtype=np.float32)

    @component.output_types(documents=list[Document])
    def run(
        self, query_embedding: Any, question: str, documents: list[Document], context: str = ""
    ) -> dict[str, list[Document]]:
        """Score `documents` for `question`; `context` (an earlier question) counts half in term overlap."""
        if not documents:
            return {"documents": []}
        lexical: Lexicon | None = self.lexicon() if self.lexicon is not None else None
        vector = self._query_vector(query_embedding, question, context)
        own, earlier = lexical.terms([question, context]) if lexical else (set(), set())
        earlier -= own
        question_weight = lexical.idf(own) + 0.5 * lexical.idf(earlier) if lexical else 0.0
        scored = []
        for document in documents:
            spans = document.meta["sentences"].spans
            cosines = np.asarray(document.meta["sentences"].vectors, dtype=np.float32) @ vector
            overlaps = np.zeros(len(spans), dtype=np.float32)
            if question_weight > 0 and lexical is not None:
                terms = self._sentence_terms(lexical, document)
                overlaps = np.array(
                    [(lexical.idf(own & t) + 0.5 * lexical.idf(earlier & t)) / question_weight for t in terms]
                )
            scores = (cosines + self.lexical_weight * overlaps) / (1.0 + self.lexical_weight)
            best = int(np.argmax(scores))
            sentence_score = float(scores[best])
            meta = {**document.meta, "best_sentence": best, "sentence_score": sentence_score}
            rank_score = sentence_score + self.prior_weight * float(document.score or 0.0) / (1.0 + self.lexical_weight)
            scored.append(replace(document, meta=meta, score=rank_score))
        scored.sort(key=lambda d: -(d.score or 0.0))
        scored = newest_first_among_ties(scored, self.recency_margin)
        seen: set[str] = set()
        first_of_source, repeats = [], []
        for document in scored:
            source = document.meta.get("source", "")
            (repeats if source in seen else first_of_source).append(document)
            seen.add(source)
        return {"documents": (first_of_source + repeats)[: self.top_k]}


def newest_first_among_ties(documents: list[Document], margin: float) -> list[Document]:
    """Passages sorted best first, with near ties ordered newest article first.

    Walking down the ranking, a passage scoring within `margin` of the first passage of the current
    group joins it; each group is ordered by article date, newest first (undated last, ties keep
    their order). News is asked about as it stands now: of two equally good answers, the newer.
    """
    ordered: list[Document] = []
    start = 0
    while start < len(documents):
        top = documents[start].score or 0.0
        end = start + 1
        while end < len(documents) and top - (documents[end].score or 0.0) <= margin:
            end += 1
        group = documents[start:end]
        ordered += sorted(group, key=lambda d: d.meta.get("published") or "", reverse=True)
        start = end
    return ordered
