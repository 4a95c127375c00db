"""The sentence reader: scores every sentence of the top passages against the question, and can
answer with the best one (a sentence answer).

Its answers are Haystack ExtractedAnswers (or None when it does not know), with the passage in
`document`, and `meta` holding `kind` and the `evidence` sentence.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from haystack import Document, component
from haystack.dataclasses import ExtractedAnswer

from retrieval.models.embedders import OnnxEmbedder, TokenVectors
from retrieval.stores.terms import STOPWORDS

_WORD = re.compile(r"\w")
_QUESTION_WORDS = frozenset({"who", "whom", "whose", "what", "which", "when", "where", "why", "how"})


def evidence_sentence(passage: Document, start: int, end: int) -> tuple[str, int]:
    """The sentence of `passage` holding characters start..end, and that sentence's offset."""
    content, spans = passage.content or "", passage.meta["sentences"].spans
    for s_start, s_end in spans:
        if s_start <= start < s_end:
            if end > s_end:  # the span crosses a sentence boundary: show both sentences
                last = next((e for s, e in spans if s < end <= e), end)
                return content[s_start:last], s_start
            return content[s_start:s_end], s_start
    return content, 0


def sentence_answer(query: str, score: float, document: Document, k: int) -> ExtractedAnswer:
    """Sentence `k` of `document` as a sentence answer with `score`."""
    start, end = document.meta["sentences"].spans[k]
    sentence = (document.content or "")[start:end]
    return ExtractedAnswer(
        query=query,
        score=score,
        data=sentence,
        document=document,
        document_offset=ExtractedAnswer.Span(start, end),
        meta={"kind": "sentence", "evidence": sentence, "evidence_offset": start},
    )


@component
class SentenceReader:
    """Answers with the sentence of the top passages that best matches the question, token by token.

    The embedding model reads the top passage (and the next ones, up to `passages`, when the ranker
    found them within `margin` as good): the sentences around the ranker's best one, `window`
    sentences before and after it, read together so that each token's vector carries its context
    ("This region" knows it is the Amazon basin). Each content token of the question takes
    its best match among a sentence's tokens (late interaction, as in ColBERT); a sentence scores
    the mean of those matches, once over its own tokens and once over its own and the previous
    sentence's (an answer often follows the sentence that names the topic): `score` is
    (own + 2 * in context) / 3, in 0..1. Terms of an earlier question (`context`, for follow-ups)
    count half. Below `min_score` the answer is None: the bot does not know.
    """

    def __init__(
        self,
        encoder: OnnxEmbedder,
        passages: int = 2,
        min_score: float = 0.45,
        margin: float = 0.05,
        window: tuple[int, int] = (1, 2),
        cache: int = 512,
    ) -> None:
        self.encoder = encoder
        self.passages = passages
        self.margin = margin
        self.window = window
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

    def _question_tokens(
        self, question: str, context: str, read: TokenVectors | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The question's content-token vectors and their weights (summing to 1); `read` is the
        question's reading when the query embedder has already made it."""
        self.warm_up()
        assert self._function_words is not None
        texts = [question, context] if context else [question]
        readings = [read] if read is not None and not context else self.encoder.token_vectors(texts)
        parts, weights = [], []
        for text, tokens, weight in zip(texts, readings, (1.0, 0.5), strict=False):
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

    def sentence_scores(
        self, question: str, documents: list[Document], context: str = "", question_tokens: TokenVectors | None = None
    ) -> list[np.ndarray]:
        """For each document, the score of each of its sentences (0 for sentences not read)."""
        if not documents:
            return []
        question_vectors, weights = self._question_tokens(question, context, question_tokens)
        windows = [self._window(document) for document in documents]
        readings = self._read(documents, windows)
        scores = []
        for document, (first, last), tokens in zip(documents, windows, readings, strict=True):
            spans = document.meta["sentences"].spans
            similarity = tokens.vectors @ question_vectors.T  # (tokens read, question tokens)
            offset = spans[first][0] if first < len(spans) else 0
            starts = tokens.offsets[:, 0] + offset  # token offsets are relative to the window read
            sentence_of = np.searchsorted([end for _, end in spans], starts, side="right")
            best = np.zeros((len(spans), len(weights)), dtype=np.float32)
            for k in range(first, last):
                rows = similarity[sentence_of == k]
                if len(rows):
                    best[k] = np.clip(rows.max(axis=0), 0.0, 1.0)
            in_context = np.maximum(best, np.vstack([np.zeros_like(best[:1]), best[:-1]]))
            scores.append((best @ weights + 2 * (in_context @ weights)) / 3)
        return scores

    def _window(self, document: Document) -> tuple[int, int]:
        """The sentences to read: around the ranker's best sentence, or all of them."""
        count = len(document.meta["sentences"].spans)
        best = document.meta.get("best_sentence")
        if best is None:
            return 0, count
        return max(0, best - self.window[0]), min(count, best + self.window[1] + 1)

    def _worth_reading(self, documents: list[Document]) -> list[Document]:
        """The top passage, and those of the next `passages - 1` whose best sentence (by the ranker's
        sentence score) comes within `margin` of the top passage's: most questions read one passage.
        A passage whose best sentence was already chosen in another article (a syndicated copy) is
        not read; the next passage of the same article is, as it goes on past the first one's end."""
        if not documents:
            return []
        top = documents[0].meta.get("sentence_score", 0.0)
        chosen: list[Document] = []
        sources: dict[str, set[str]] = {}
        for document in documents[: self.passages]:
            if chosen and document.meta.get("sentence_score", 0.0) < top - self.margin:
                continue
            first = document.meta.get("best_sentence", 0)
            best = self._window_text(document, (first, first + 1))
            source = document.meta.get("source", "")
            if any(best in sentences for other, sentences in sources.items() if other != source):
                continue
            chosen.append(document)
            sources.setdefault(source, set()).add(best)
        return chosen

    def _window_text(self, document: Document, window: tuple[int, int]) -> str:
        spans = document.meta["sentences"].spans
        first, last = window
        return (document.content or "")[spans[first][0] : spans[last - 1][1]] if first < last else ""

    def _read(self, documents: list[Document], windows: list[tuple[int, int]]) -> list[TokenVectors]:
        """The token vectors of each document's window of sentences, from the cache where it has them."""
        keys = [f"{d.id}:{first}:{last}" for d, (first, last) in zip(documents, windows, strict=True)]
        with self._readings_lock:
            found = {key: self._readings[key] for key in keys if key in self._readings}
            for key in found:
                self._readings.move_to_end(key)
        texts = {
            key: self._window_text(document, window)
            for key, document, window in zip(keys, documents, windows, strict=True)
            if key not in found
        }
        if texts:
            found.update(zip(texts, self.encoder.token_vectors(list(texts.values())), strict=True))
            with self._readings_lock:
                for key in texts:
                    self._readings[key] = found[key]
                while len(self._readings) > self.cache:
                    self._readings.popitem(last=False)
        return [found[key] for key in keys]

    def best_sentences(
        self,
        question: str,
        documents: list[Document],
        context: str = "",
        question_tokens: TokenVectors | None = None,
    ) -> list[tuple[float, Document, int]]:
        """(score, document, sentence number) of every sentence read, best first."""
        documents = self._worth_reading(documents)
        scores = self.sentence_scores(question, documents, context, question_tokens)
        choices = [
            (float(sentence_scores[k]), document, k)
            for document, sentence_scores in zip(documents, scores, strict=True)
            for k in range(len(sentence_scores))
        ]
        return sorted(choices, key=lambda choice: choice[0], reverse=True)

    def sentences_text(self, document: Document, first: int, last: int) -> tuple[str, int]:
        """The text of sentences first..last - 1 of `document`, and its offset in the document."""
        spans = document.meta["sentences"].spans
        return self._window_text(document, (first, last)), spans[first][0]

    @component.output_types(answer=ExtractedAnswer | None)
    def run(
        self,
        query: str,
        documents: list[Document],
        question: str = "",
        context: str = "",
        question_tokens: TokenVectors | None = None,
    ) -> dict[str, Any]:
        """Read the top documents for `question` (default: `query`); `query` is kept on the answer.
        `question_tokens`, the question's own reading if the query embedder made one, saves a run."""
        choices = self.best_sentences(question or query, documents, context, question_tokens)
        if not choices or choices[0][0] < self.min_score:
            return {"answer": None}
        answer = sentence_answer(query, *choices[0])
        others = [sentence_answer(query, *choice) for choice in choices[1:3] if choice[0] >= self.min_score]
        answer.meta.update(band="unsure", alternatives=others)  # a sentence, not the exact words
        return {"answer": answer}
