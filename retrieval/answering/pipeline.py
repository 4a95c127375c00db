"""The question pipeline: follow-up context → BM25 and dense retrieval, fused → re-ranking → reader.

`build_question_pipeline` wires the Haystack components over a loaded index; `answer_from` turns
the pipeline's output into the `Answer` every front end renders.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from haystack import Document, Pipeline

from retrieval.answering.answer import Alternative, Answer, Passage, Turn
from retrieval.answering.decide import ExtractiveAnswerer
from retrieval.answering.followup import FollowUpContextualizer
from retrieval.answering.rerank import SentenceEvidenceRanker
from retrieval.answering.rules import AnswerRules
from retrieval.answering.sentence_reader import SentenceReader
from retrieval.answering.spelling import SpellingCorrector
from retrieval.answering.story import StoryFilter
from retrieval.models.embedders import OnnxEmbedder, OnnxTextEmbedder
from retrieval.settings import Settings
from retrieval.stores.protocol import PassageStore
from retrieval.stores.terms import question_terms


def clean_question(question: str) -> str:
    """The question as the models can take it: valid Unicode, no control characters, single spaces."""
    text = str(question).encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    text = "".join(" " if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in text)
    return " ".join(text.split())


def cleaned_turn(turn: Turn) -> Turn:
    return Turn(clean_question(turn.question), turn.answer)


def build_question_pipeline(
    store: PassageStore,
    settings: Settings,
    embedder: Any,
    reader: Any,
    onnx: Callable[[], OnnxEmbedder],
    rules: AnswerRules | None = None,
) -> Pipeline:
    """The pipeline over `store`'s retrieval. The sentence reader (on `onnx()`) picks the best sentences; with a
    `reader`, it reads the windows around them for a span, else the best sentence is the answer."""
    retrieval, answers = settings.retrieval, settings.answer
    pipeline = Pipeline()
    pipeline.add_component("embedder", embedder)
    ports = store.add_retrieval(pipeline, candidates=retrieval.candidates, top_k=retrieval.top_k)
    pipeline.add_component("followup", FollowUpContextualizer(speller=SpellingCorrector(ports.lexicon)))
    pipeline.add_component("story", StoryFilter(store))
    ranker = SentenceEvidenceRanker(
        ports.lexicon, embedder=embedder, top_k=retrieval.top_k, recency_margin=retrieval.recency_margin
    )
    pipeline.add_component("ranker", ranker)
    pipeline.connect("followup.search_query", "embedder.text")
    for socket in ports.query_inputs:
        pipeline.connect("followup.search_query", socket)
    for socket in ports.embedding_inputs:
        pipeline.connect("embedder.embedding", socket)
    pipeline.connect("followup.question", "ranker.question")
    pipeline.connect("followup.context", "ranker.context")
    pipeline.connect("embedder.embedding", "ranker.query_embedding")
    pipeline.connect(ports.output, "story.documents")
    pipeline.connect("followup.story", "story.story")
    pipeline.connect("story.documents", "ranker.documents")
    sentences = SentenceReader(onnx(), passages=answers.sentence_passages, min_score=answers.min_sentence_score)
    answerer: Any = sentences
    if reader is not None:
        answerer = ExtractiveAnswerer(
            reader,
            sentences,
            windows=answers.reader_windows,
            margin=answers.reader_window_margin,
            lexicon=ports.lexicon,
            **(rules or AnswerRules()).answerer_options(),
        )
    pipeline.add_component("answerer", answerer)
    pipeline.connect("followup.reader_question", "answerer.query")
    pipeline.connect("followup.question", "answerer.question")
    pipeline.connect("followup.context", "answerer.context")
    if reader is not None:
        pipeline.connect("followup.referent", "answerer.referent")
    if isinstance(embedder, OnnxTextEmbedder):
        pipeline.connect("embedder.tokens", "answerer.question_tokens")
    pipeline.connect("ranker.documents", "answerer.documents")
    pipeline.warm_up()
    return pipeline


class QuestionTruncator:
    """Cuts a question to `limit` tokens of the embedding model's tokenizer (loaded on the first long question)."""

    def __init__(self, tokenizer_file: Path, limit: int) -> None:
        self.tokenizer_file = tokenizer_file
        self.limit = limit
        self._tokenizer: Any = None

    def cut(self, question: str) -> tuple[str, list[str]]:
        """The question, cut when it is too long, and a notice saying so."""
        limit = self.limit
        if len(question) <= limit:  # a token covers at least one character
            return question, []
        offsets = self._question_tokenizer().encode(question[: limit * 40], add_special_tokens=False).offsets
        if len(offsets) <= limit:
            return question, []
        cut = question[: offsets[limit - 1][1]].rstrip()
        return cut, [f"Your question was cut to its first {limit} tokens ({len(cut)} characters)."]

    def _question_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(self.tokenizer_file))
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
        return self._tokenizer


def answer_from(
    question: str,
    extracted: Any,
    documents: list[Document],
    search_query: str,
    notices: tuple[str, ...],
) -> Answer:
    """The `Answer` from the answerer's output (`extracted`; None: "I don't know") and the ranked passages."""
    passages = tuple(
        Passage(
            id=doc.id,
            text=doc.content or "",
            title=doc.meta.get("title", ""),
            source=doc.meta.get("source", ""),
            score=float(doc.score or 0.0),
            published=doc.meta.get("published", ""),
            url=doc.meta.get("url", ""),
        )
        for doc in documents
    )
    if extracted is None:
        return Answer(question, "", 0.0, "none", passages=passages, search_query=search_query, notices=notices)
    evidence = extracted.meta["evidence"]
    start = extracted.document_offset.start - extracted.meta["evidence_offset"]
    end = start + len(extracted.data)
    if not (start >= 0 and evidence[start:end] == extracted.data):
        start, end = -1, -1
    return Answer(
        question=question,
        text=extracted.data,
        confidence=extracted.meta.get("band", "unsure") if _clear(question, search_query, notices) else "unsure",
        alternatives=tuple(_alternative(a) for a in extracted.meta.get("alternatives", ())),
        coverage=round(float(extracted.meta.get("coverage", 0.0)), 4),
        score=round(float(extracted.score), 4),
        kind=extracted.meta["kind"],
        evidence=evidence,
        title=extracted.document.meta.get("title", ""),
        source=extracted.document.meta.get("source", ""),
        passages=passages,
        answer_start=start,
        answer_end=end,
        search_query=search_query,
        notices=notices,
        published=extracted.document.meta.get("published", ""),
        url=extracted.document.meta.get("url", ""),
    )


def _clear(question: str, search_query: str, notices: tuple[str, ...]) -> bool:
    """Whether a question says enough for a sure answer: two words or more, a term search weighs in it
    or in the conversation it continues (its search query), and not cut short (a one-word,
    all-function-word or overlong question is never sure)."""
    return not notices and len(question.split()) >= 2 and bool(question_terms(search_query or question))


def _alternative(answer: Any) -> Alternative:
    document = answer.document
    return Alternative(
        text=answer.data,
        score=round(float(answer.score), 4),
        evidence=answer.meta.get("evidence", ""),
        title=document.meta.get("title", ""),
        source=document.meta.get("source", ""),
        published=document.meta.get("published", ""),
        url=document.meta.get("url", ""),
    )
