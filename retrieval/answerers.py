"""Turning the fused passages into one answer: an extractive span, or the best-matching sentence.

Both components return a Haystack ExtractedAnswer (or None when they do not know), with the
passage in `document`, and `meta` holding `kind` and the `evidence` sentence.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from haystack import Document, component
from haystack.dataclasses import ExtractedAnswer

from retrieval.onnx_embedding import OnnxEmbedder, TokenVectors
from retrieval.retrievers import STOPWORDS
from retrieval.store import IndexData

_WORD = re.compile(r"\w")
_QUESTION_WORDS = frozenset({"who", "whom", "whose", "what", "which", "when", "where", "why", "how"})


def evidence_sentence(index: IndexData, row: int, start: int, end: int) -> tuple[str, int]:
    """The sentence of passage `row` holding characters start..end, and that sentence's offset."""
    passage = index.passages[row]
    for s_start, s_end in passage.sentence_spans:
        if s_start <= start < s_end:
            if end > s_end:  # the span crosses a sentence boundary: show both sentences
                last = next((e for s, e in passage.sentence_spans if s < end <= e), end)
                return passage.content[s_start:last], s_start
            return passage.content[s_start:s_end], s_start
    return passage.content, 0


@component
class SentenceReader:
    """Answers with the sentence of the top passages that best matches the question, token by token.

    The embedding model reads the top `passages` passages whole, so each token's vector carries its
    context ("This region" knows it is the Amazon basin). Each content token of the question takes
    its best match among a sentence's tokens (late interaction, as in ColBERT); a sentence scores
    the mean of those matches, once over its own tokens and once over its own and the previous
    sentence's (an answer often follows the sentence that names the topic): `score` is
    (own + 2 * in context) / 3, in 0..1. Terms of an earlier question (`context`, for follow-ups)
    count half. Below `min_score` the answer is None: the bot does not know.
    """

    def __init__(
        self, index: IndexData, encoder: OnnxEmbedder, passages: int = 2, min_score: float = 0.5, cache: int = 512
    ) -> None:
        self.index = index
        self.encoder = encoder
        self.passages = passages
        self.min_score = min_score
        self.cache = cache
        self._function_words: set[int] | None = None
        # Readings of recently read passages: questions about one article reuse them.
        self._readings: OrderedDict[str, TokenVectors] = OrderedDict()
        self._readings_lock = threading.Lock()

    def warm_up(self) -> None:
        self.encoder.warm_up()
        if self._function_words is None:
            tokenizer = self.encoder.tokenizer
            # Question words stay: "when" matches dates, "how many" numbers.
            ids = (tokenizer.token_to_id(word) for word in STOPWORDS - _QUESTION_WORDS)
            self._function_words = {i for i in ids if i is not None}

    def _question_tokens(self, question: str, context: str) -> tuple[np.ndarray, np.ndarray]:
        """The question's content-token vectors and their weights (summing to 1)."""
        self.warm_up()
        assert self._function_words is not None
        texts = [question, context] if context else [question]
        parts, weights = [], []
        for text, tokens, weight in zip(texts, self.encoder.token_vectors(texts), (1.0, 0.5), strict=False):
            content = [
                i
                for i, (token, (start, end)) in enumerate(zip(tokens.ids, tokens.offsets, strict=True))
                if int(token) not in self._function_words and _WORD.search(text[start:end])
            ]
            keep = content or list(range(len(tokens.ids)))  # "Why?" has no content word: use what there is
            parts.append(tokens.vectors[keep])
            weights.append(np.full(len(keep), weight, dtype=np.float32))
        vectors, weight = np.vstack(parts), np.concatenate(weights)
        return vectors, weight / max(float(weight.sum()), 1e-9)

    def sentence_scores(self, question: str, documents: list[Document], context: str = "") -> list[np.ndarray]:
        """For each document, the score of each of its sentences."""
        if not documents:
            return []
        question_vectors, weights = self._question_tokens(question, context)
        readings = self._read(documents)
        scores = []
        for document, tokens in zip(documents, readings, strict=True):
            spans = self.index.passages[document.meta["row"]].sentence_spans
            similarity = tokens.vectors @ question_vectors.T  # (passage tokens, question tokens)
            sentence_of = np.searchsorted([end for _, end in spans], tokens.offsets[:, 0], side="right")
            best = np.zeros((len(spans), len(weights)), dtype=np.float32)
            for k in range(len(spans)):
                rows = similarity[sentence_of == k]
                if len(rows):
                    best[k] = np.clip(rows.max(axis=0), 0.0, 1.0)
            in_context = np.maximum(best, np.vstack([np.zeros_like(best[:1]), best[:-1]]))
            scores.append((best @ weights + 2 * (in_context @ weights)) / 3)
        return scores

    def _read(self, documents: list[Document]) -> list[TokenVectors]:
        """The token vectors of each document's passage, from the cache where it has them."""
        with self._readings_lock:
            found = {d.id: self._readings[d.id] for d in documents if d.id in self._readings}
            for key in found:
                self._readings.move_to_end(key)
        missing = list({d.id: d for d in documents if d.id not in found}.values())
        if missing:
            readings = self.encoder.token_vectors([d.content or "" for d in missing])
            found.update(zip((d.id for d in missing), readings, strict=True))
            with self._readings_lock:
                for document in missing:
                    self._readings[document.id] = found[document.id]
                while len(self._readings) > self.cache:
                    self._readings.popitem(last=False)
        return [found[d.id] for d in documents]

    @component.output_types(answer=ExtractedAnswer | None)
    def run(self, query: str, documents: list[Document], question: str = "", context: str = "") -> dict[str, Any]:
        """Read the top documents for `question` (default: `query`); `query` is kept on the answer."""
        documents = documents[: self.passages]
        choices = [
            (float(sentence_scores[k]), document, k)
            for document, sentence_scores in zip(
                documents, self.sentence_scores(question or query, documents, context), strict=True
            )
            for k in range(len(sentence_scores))
        ]
        if not choices:
            return {"answer": None}
        score, document, k = max(choices, key=lambda choice: choice[0])
        if score < self.min_score:
            return {"answer": None}
        start, end = self.index.passages[document.meta["row"]].sentence_spans[k]
        sentence = (document.content or "")[start:end]
        return {
            "answer": ExtractedAnswer(
                query=query,
                score=score,
                data=sentence,
                document=document,
                document_offset=ExtractedAnswer.Span(start, end),
                meta={"kind": "sentence", "evidence": sentence, "evidence_offset": start},
            )
        }


@component
class ExtractiveAnswerer:
    """Runs a TransformersExtractiveReader on the top passages and keeps its best span.

    No answer (the reader's no-answer wins, or confidence under `min_score`) gives None.
    """

    def __init__(
        self,
        reader: Any,
        index: IndexData,
        passages: int = 3,
        min_score: float = 0.25,
        no_answer: bool = True,
    ) -> None:
        self.reader = reader
        self.index = index
        self.passages = passages
        self.min_score = min_score
        self.no_answer = no_answer

    def warm_up(self) -> None:
        self.reader.warm_up()

    @component.output_types(answer=ExtractedAnswer | None)
    def run(self, query: str, documents: list[Document]) -> dict[str, Any]:
        documents = documents[: self.passages]
        if not documents:
            return {"answer": None}
        answers = self.reader.run(query=query, documents=documents, top_k=1, no_answer=self.no_answer)["answers"]
        spans = [a for a in answers if a.data]
        no_answer = max((a.score for a in answers if not a.data), default=0.0)
        if not spans or spans[0].score < self.min_score or spans[0].score < no_answer:
            return {"answer": None}
        best = spans[0]
        assert best.document is not None and best.document_offset is not None
        sentence, offset = evidence_sentence(
            self.index, best.document.meta["row"], best.document_offset.start, best.document_offset.end
        )
        best.meta.update({"kind": "extractive", "evidence": sentence, "evidence_offset": offset})
        return {"answer": best}
