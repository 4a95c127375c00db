"""Turning the fused passages into one answer: an extractive span, or the best-matching sentence.

Both components return a Haystack ExtractedAnswer (or None when they do not know), with the
passage in `document`, and `meta` holding `kind` and the `evidence` sentence.
"""

from __future__ import annotations

from typing import Any

from haystack import Document, component
from haystack.dataclasses import ExtractedAnswer

from retrieval.store import IndexData


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
class SentenceAnswerer:
    """Answers with the best sentence of the top passage, as chosen by SentenceEvidenceRanker.

    Below `min_score` (the ranker's 0..1 sentence score) the answer is None: the bot does not know.
    """

    def __init__(self, index: IndexData, min_score: float = 0.35) -> None:
        self.index = index
        self.min_score = min_score

    @component.output_types(answer=ExtractedAnswer | None)
    def run(self, query: str, documents: list[Document]) -> dict[str, Any]:
        # The best sentence wins even when its passage ranks second: passage rank also weighs retrieval.
        document = max(documents, key=lambda d: d.meta.get("sentence_score", -1.0), default=None)
        if document is None or document.meta.get("sentence_score", -1.0) < self.min_score:
            return {"answer": None}
        start, end = self.index.passages[document.meta["row"]].sentence_spans[document.meta["best_sentence"]]
        sentence = (document.content or "")[start:end]
        return {
            "answer": ExtractedAnswer(
                query=query,
                score=max(0.0, min(1.0, document.meta["sentence_score"])),
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
