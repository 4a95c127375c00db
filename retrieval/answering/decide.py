"""Deciding the answer: the extractive reader's span, the best sentence, or no answer.

`ExtractiveAnswerer` reads the sentence reader's best sentences with the span reader and weighs
the two with fitted `ReadingModel`s; it returns a Haystack ExtractedAnswer, or None when it does not know.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from haystack import Document, component
from haystack.dataclasses import ExtractedAnswer

from retrieval.answering.rules import DEFAULT_SURE_CONFIDENCE, DEFAULT_SURE_COVERAGE, ReadingModel, year_conflict
from retrieval.answering.sentence_reader import SentenceReader, evidence_sentence, sentence_answer
from retrieval.models.embedders import TokenVectors
from retrieval.stores.protocol import Lexicon
from retrieval.stores.terms import question_terms


@dataclass(frozen=True)
class Reading:
    """What the extractive reader found in the passages for one question, before deciding to answer:
    its best span, placed in its passage with its evidence sentence (None: no span), the no-answer
    score of Haystack's reader, the best sentence's score, whether the span lies in that best
    sentence, the best sentence's lead over the next, and the best sentence itself (its passage
    and number); how much of the question the span's passage covers and whether its sentence
    contradicts a year the question names (see `ReadingModel`); and the next distinct spans."""

    span: ExtractedAnswer | None
    no_answer: float
    sentence_score: float
    in_best_sentence: bool = False
    lead: float = 0.0
    best_sentence: tuple[Document, int] | None = None
    coverage: float = 1.0
    year_conflict: bool = False
    alternatives: tuple[ExtractedAnswer, ...] = ()


@component
class ExtractiveAnswerer:
    """Answers with a span: an extractive reader reads the sentences the sentence reader found best.

    The sentence reader scores the sentences of the top passages (see `SentenceReader`); the
    `windows` best sentences, each with `around` sentences before and after it, are what the
    reader reads: a few sentences, as it was trained, rather than whole passages; a sentence after
    the first only when it scores within `margin` of the best (most questions have one clear best
    sentence, and one window read). Its best span
    is the answer, unless no-answer wins or its confidence is under `min_score`: the answer is then
    None, the bot does not know. No-answer is Haystack's (the chance that no span is right), or, with
    a `no_answer_model`, the chance that the passages hold no answer, judged from the span's
    confidence, how well the best sentence matches the question, whether the span lies in it and
    how far it leads the next sentence. When no-answer does not win but the span's confidence is
    under `min_score`, and the best sentence scores at least `fallback_score` (None: never), the
    answer is that sentence, as a sentence answer: the passages hold the answer, the exact words
    are unsure.

    Every answer carries a band in `meta["band"]`: "sure" when the `sure_model`'s chance that it is
    right reaches `sure_threshold` (without one: `sure_confidence` and `sure_coverage`), else "unsure"; and the
    next `alternatives` distinct spans scoring at least `min_alternative_score` in
    `meta["alternatives"]` (on the dev sets, fewer than 2% of those under 0.01 were right).
    `lexicon` (the store's, a callable as the re-ranker takes it) weighs the question's terms for
    the coverage.
    """

    def __init__(
        self,
        reader: Any,
        sentences: SentenceReader,
        windows: int = 2,
        around: tuple[int, int] = (1, 1),
        min_score: float = 0.5,
        margin: float = 1.0,
        no_answer: bool = True,
        no_answer_model: ReadingModel | None = None,
        fallback_score: float | None = None,
        sure_model: ReadingModel | None = None,
        sure_threshold: float = 0.5,
        sure_confidence: float = DEFAULT_SURE_CONFIDENCE,
        sure_coverage: float = DEFAULT_SURE_COVERAGE,
        lexicon: Callable[[], Lexicon | None] | None = None,
        alternatives: int = 2,
        min_alternative_score: float = 0.01,
    ) -> None:
        self.reader = reader
        self.sentences = sentences
        self.windows = windows
        self.around = around
        self.margin = margin
        self.min_score = min_score
        self.no_answer = no_answer
        self.no_answer_model = no_answer_model
        self.fallback_score = fallback_score
        self.sure_model = sure_model
        self.sure_threshold = sure_threshold
        self.sure_confidence = sure_confidence
        self.sure_coverage = sure_coverage
        self.lexicon = lexicon
        self.alternatives = alternatives
        self.min_alternative_score = min_alternative_score

    def warm_up(self) -> None:
        self.reader.warm_up()
        self.sentences.warm_up()

    def _windows(self, choices: list[tuple[float, Document, int]]) -> list[Document]:
        """Documents for the reader: the `windows` best sentences (those within `margin` of the best),
        each with `around` sentences before and after it. Windows of one passage that overlap or
        touch are read as one (the best two sentences are most often neighbours: one read of four
        sentences, not two of three). The same text of one article (in two overlapping passages)
        is read once."""
        ranges: dict[str, list[list[int]]] = {}
        passages: dict[str, Document] = {}
        for score, document, k in choices[: self.windows]:
            if score < choices[0][0] - self.margin:
                break
            count = len(document.meta["sentences"].spans)
            ranges.setdefault(document.id, []).append([max(0, k - self.around[0]), min(count, k + self.around[1] + 1)])
            passages[document.id] = document
        windows, seen = [], set()
        for passage_id, found in ranges.items():  # passages in the order of their best sentence
            merged: list[list[int]] = []
            for first, last in sorted(found):
                if merged and first <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], last)
                else:
                    merged.append([first, last])
            passage = passages[passage_id]
            for first, last in merged:
                text, offset = self.sentences.sentences_text(passage, first, last)
                key = (passage.meta.get("source", ""), text)
                if text and key not in seen:
                    seen.add(key)
                    windows.append(
                        Document(id=f"{passage.id}:{offset}", content=text, meta={"passage": passage, "offset": offset})
                    )
        return windows

    def read(
        self,
        query: str,
        documents: list[Document],
        question: str = "",
        context: str = "",
        question_tokens: TokenVectors | None = None,
        referent: str = "",
    ) -> Reading:
        """The reader's best span in the windows around the best sentences of `documents`; not one
        that names only the `referent` (see `names_only`)."""
        choices = self.sentences.best_sentences(question or query, documents, context, question_tokens)
        windows = self._windows(choices)
        if not windows:
            return Reading(None, 1.0, 0.0)
        answers = self.reader.run(query=query, documents=windows, top_k=1 + 2 * self.alternatives, no_answer=False)
        spans = [a for a in answers["answers"] if a.data and a.data.strip() and not names_only(a.data, referent)]
        no_answer = 1.0 - spans[0].score if spans else 1.0  # Haystack's, of the best span alone
        score, best_document, best = choices[0]
        lead = score - choices[1][0] if len(choices) > 1 else score
        if not spans:
            return Reading(None, no_answer, score, lead=lead, best_sentence=(best_document, best))
        start, end = best_document.meta["sentences"].spans[best]
        span = self.answer_of(spans[0])
        assert span.document is not None and span.document_offset is not None
        agree = span.document.id == best_document.id and start <= span.document_offset.start < end
        return Reading(
            span,
            no_answer,
            score,
            agree,
            lead,
            (best_document, best),
            coverage=self._coverage(question or query, span.document),
            year_conflict=year_conflict(question or query, span.meta["evidence"]),
            alternatives=self._distinct(span, [self.answer_of(a) for a in spans[1:]]),
        )

    def _coverage(self, question: str, passage: Document) -> float:
        """The share of the question's terms, weighed by rarity, found in the passage or its title. A
        term no indexed article holds ("How many people live in Faenza?" where no article says
        "live") weighs as much as the rarest known one. 1.0 without a lexicon."""
        lexicon = self.lexicon() if self.lexicon is not None else None
        if lexicon is None:
            return 1.0
        asked, present = lexicon.terms([question, f"{passage.meta.get('title', '')}\n{passage.content or ''}"])
        unseen = max(0, len(question_terms(question)) - len(asked))
        rarest = max((lexicon.idf({term}) for term in asked), default=1.0)
        weight = lexicon.idf(asked) + unseen * rarest
        return lexicon.idf(asked & present) / weight if weight > 0 else 1.0

    def _distinct(self, best: ExtractedAnswer, others: list[ExtractedAnswer]) -> tuple[ExtractedAnswer, ...]:
        """Up to `alternatives` spans whose words differ from the answer's and from each other's,
        scoring at least `min_alternative_score`."""
        kept: list[ExtractedAnswer] = []
        seen = [_words(best.data)]
        for other in others:
            if other.score < self.min_alternative_score:
                break  # best first: the rest score less
            words = _words(other.data)
            if words and not any(words <= known or known <= words for known in seen):
                kept.append(other)
                seen.append(words)
            if len(kept) == self.alternatives:
                break
        return tuple(kept)

    def answerable(self, reading: Reading) -> float:
        """The chance that the passages read hold an answer (1 when no-answer is not considered)."""
        if reading.span is None:
            return 0.0
        if not self.no_answer:
            return 1.0
        if self.no_answer_model is None:  # Haystack's: no-answer wins when it outscores the best span
            return 1.0 if reading.span.score >= reading.no_answer else 0.0
        return self.no_answer_model.chance(reading)

    def sure(self, reading: Reading) -> bool:
        """Whether the reading's span may be shown as a sure answer."""
        if reading.span is None:
            return False
        if self.sure_model is not None:
            return self.sure_model.chance(reading) >= self.sure_threshold
        return (
            reading.span.score >= self.sure_confidence
            and reading.coverage >= self.sure_coverage
            and not reading.year_conflict
        )

    @component.output_types(answer=ExtractedAnswer | None)
    def run(
        self,
        query: str,
        documents: list[Document],
        question: str = "",
        context: str = "",
        question_tokens: TokenVectors | None = None,
        referent: str = "",
    ) -> dict[str, Any]:
        """Read the best windows for `query` (the reader's question); `question` and `context` choose
        the sentences, as for the sentence reader; `referent` is the earlier answer a follow-up leans on."""
        reading = self.read(query, documents, question, context, question_tokens, referent)
        return {"answer": self.decide(reading)}

    def decide(self, reading: Reading) -> ExtractedAnswer | None:
        """The answer to give for `reading`: its span, its best sentence, or None ("I don't know"),
        with its band and alternatives in `meta`."""
        best = reading.span
        if best is None or self.answerable(reading) < 0.5:
            return None
        alternatives = list(reading.alternatives)
        if best.score >= self.min_score:
            band = "sure" if self.sure(reading) else "unsure"
            return _with(best, band=band, alternatives=alternatives, coverage=reading.coverage)
        fallback = self.fallback_score
        if fallback is not None and fallback < 1.0 and reading.sentence_score >= fallback and reading.best_sentence:
            sentence = sentence_answer(best.query, reading.sentence_score, *reading.best_sentence)
            return _with(sentence, band="unsure", alternatives=[best, *alternatives][: self.alternatives])
        return None

    @staticmethod
    def answer_of(span: ExtractedAnswer) -> ExtractedAnswer:
        """The answer for a span the reader found in a window: placed in its passage, with its sentence."""
        assert span.document is not None and span.document_offset is not None
        passage: Document = span.document.meta["passage"]
        offset = span.document.meta["offset"]
        start, end = span.document_offset.start + offset, span.document_offset.end + offset
        sentence, sentence_offset = evidence_sentence(passage, start, end)
        return ExtractedAnswer(
            query=span.query,
            score=span.score,
            data=span.data,
            document=passage,
            document_offset=ExtractedAnswer.Span(start, end),
            meta={"kind": "extractive", "evidence": sentence, "evidence_offset": sentence_offset},
        )


def _with(answer: ExtractedAnswer, **meta: Any) -> ExtractedAnswer:
    return ExtractedAnswer(
        query=answer.query,
        score=answer.score,
        data=answer.data,
        document=answer.document,
        document_offset=answer.document_offset,
        meta={**answer.meta, **meta},
    )


def names_only(span: str, referent: str) -> bool:
    """Whether a span only names again what a follow-up's pronoun stands for: its words are all the
    referent's, its last one too (the head of a name or noun phrase). After "Who overthrew the
    Taliban?" ("US-led forces"), "Why did they do that?" is not answered "US-led forces", nor "What
    did he say?" after "Zalmay Khalilzad" "Khalilzad"; "What is his job?" after "Defence Secretary
    Mark Esper" may be "Defence Secretary"."""
    words, named = _words(span), _WORD.findall(referent.lower())
    return bool(words and named) and words <= set(named) and named[-1] in words


_WORD = re.compile(r"\w+")


def _words(text: str | None) -> frozenset[str]:
    return frozenset(_WORD.findall((text or "").lower()))
