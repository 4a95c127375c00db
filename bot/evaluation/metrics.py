"""Scores: SQuAD exact match and F1, evidence hits, retrieval scores, question types, each question's record.

EM and retrieval scores go through Haystack's evaluators; the normalisation is SQuAD's official one.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy
from haystack import Document
from haystack.components.evaluators import (
    AnswerExactMatchEvaluator,
    DocumentMRREvaluator,
    DocumentRecallEvaluator,
)

if TYPE_CHECKING:
    from bot.evaluation.runner import QuestionResult

QUESTION_TYPES = ("who", "what", "when", "where", "how many/much", "why", "other")

_EXACT_MATCH = AnswerExactMatchEvaluator()
_RECALL = DocumentRecallEvaluator(mode="single_hit", document_comparison_field="meta.source")
_MRR = DocumentMRREvaluator(document_comparison_field="meta.source")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official SQuAD normalisation: lower case, no ASCII punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer; with no gold, when it is empty."""
    golds = list(golds) or [""]
    result = _EXACT_MATCH.run(
        ground_truth_answers=[normalize_answer(gold) for gold in golds],
        predicted_answers=[normalize_answer(prediction)] * len(golds),
    )
    return float(max(result["individual_scores"]))


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1, the best over the gold answers; with no gold, 1.0 only for an empty prediction."""
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for gold in list(golds) or [""]:
        expected = normalize_answer(gold).split()
        if not predicted or not expected:
            best = max(best, float(predicted == expected))
            continue
        common = sum((Counter(predicted) & Counter(expected)).values())
        if common:
            precision, recall = common / len(predicted), common / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def _loose_words(text: str) -> str:
    """SQuAD normalisation without Unicode punctuation (“curly quotes”), padded for whole-word search."""
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in normalize_answer(text))
    return f" {' '.join(text.split())} "


def evidence_hit(answer_text: str, evidence: str, golds: Sequence[str]) -> bool:
    """True when a gold answer appears, as whole words, in the answer or in its evidence sentence."""
    found = _loose_words(answer_text) + _loose_words(evidence)
    return any(_loose_words(gold).strip() and _loose_words(gold) in found for gold in golds)


def retrieval_scores(gold_sources: Sequence[str], retrieved_sources: Sequence[Sequence[str]]) -> dict[str, list[float]]:
    """Per question: recall at 1 and 5, and the reciprocal rank of the gold paragraph among the passages."""
    if not gold_sources:
        return {"recall_at_1": [], "recall_at_5": [], "mrr": []}

    def documents(sources: Iterable[str]) -> list[Document]:
        return [Document(content=source, meta={"source": source}) for source in sources]

    gold = [documents([source]) for source in gold_sources]
    ranked = [documents(sources) for sources in retrieved_sources]

    def scores(evaluator: Any, cut: int | None) -> list[float]:
        return evaluator.run(ground_truth_documents=gold, retrieved_documents=[r[:cut] for r in ranked])[
            "individual_scores"
        ]

    return {"recall_at_1": scores(_RECALL, 1), "recall_at_5": scores(_RECALL, 5), "mrr": scores(_MRR, None)}


_TYPE_WORDS = re.compile(
    r"\b(?:(?P<how_many>how (?:many|much))|(?P<other>how)"
    r"|(?P<when>when|(?:what|which) (?:year|date|day|month|time|century|decade))"
    r"|(?P<who>who|whom|whose)|(?P<where>where)|(?P<why>why)|(?P<what>what|which))\b",
    re.IGNORECASE,
)


def question_type(question: str) -> str:
    """The question's type from its first question word; "what year"-like questions count as "when"."""
    match = _TYPE_WORDS.search(question)
    if match is None:
        return "other"
    kind = match.lastgroup or "other"
    return "how many/much" if kind == "how_many" else kind


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (numpy's linear interpolation), None for no values."""
    return float(numpy.percentile(values, q)) if len(values) else None


def score_question(result: QuestionResult) -> dict[str, Any]:
    """The JSON record of one question: prediction, gold, answer scores (retrieval scores are added later)."""
    question, answer = result.question, result.answer
    return {
        "id": question.id,
        "question": question.question,
        "type": question_type(question.question),
        "follow_up_of": question.follow_up_of,
        "gold": list(question.answers),
        "gold_source": question.gold_source,
        "prediction": result.prediction,
        "kind": answer.kind,
        "score": answer.score,
        "confidence": answer.confidence,
        "coverage": answer.coverage,
        "evidence": answer.evidence,
        "alternatives": [
            {"text": a.text, "score": a.score, "exact_match": exact_match(a.text, question.answers)}
            for a in answer.alternatives
        ],
        "abstained": not answer.known,
        "exact_match": exact_match(result.prediction, question.answers),
        "f1": f1_score(result.prediction, question.answers),
        "evidence_hit": (
            answer.known and evidence_hit(answer.text, answer.evidence, question.answers)
            if question.answerable
            else None
        ),
        "no_answer_correct": None if question.answerable else not answer.known,
        "gold_in_passages": (
            any(evidence_hit("", passage.text, question.answers) for passage in answer.passages)
            if question.answerable
            else None
        ),
        "recall_at_1": None,
        "recall_at_5": None,
        "reciprocal_rank": None,
        "retrieved_titles": [passage.title for passage in answer.passages],
        "retrieved_sources": [passage.source for passage in answer.passages],
        "latency_ms": round(result.latency_ms, 2),
    }


def alternative_figures(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What `/more` would add, over the answerable questions: the share whose answer comes with
    alternatives, EM of the answer or any alternative (DrQA's top-n), and of the answers that miss
    the share with a right alternative."""
    answerable = [r for r in records if r["gold"]]
    missed = [r for r in answerable if not r["exact_match"]]
    in_any = [bool(r["exact_match"]) or any(a["exact_match"] for a in r["alternatives"]) for r in answerable]
    return {
        "with_alternatives": _share([bool(r["alternatives"]) for r in answerable]),
        "exact_match_top_3": _share(in_any),
        "missed_but_in_alternatives": _share([any(a["exact_match"] for a in r["alternatives"]) for r in missed]),
    }


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def failure_reason(record: dict[str, Any]) -> str | None:
    """Why a scored question counts as a failure, in the pipeline's terms; None when it did not fail."""
    if record["no_answer_correct"] is False:
        return "answered a question that has no answer"
    if record["evidence_hit"] is not False:
        return None
    if record["abstained"]:
        return "abstained"
    if record["recall_at_5"] == 0:
        return "gold paragraph not retrieved"
    if not record["gold_in_passages"]:
        return "answer not in the retrieved passages"
    return "wrong sentence chosen"


def reliability_table(scores: Sequence[float], right: Sequence[bool | float], bins: int = 10) -> list[dict[str, Any]]:
    """Per confidence bin (0-0.1, ..., 0.9-1): how many answers, their mean confidence and the share right.

    A calibrated reader's answers in each bin are right about as often as their mean confidence says.
    """
    table = []
    for number in range(bins):
        inside = [
            (score, float(ok))
            for score, ok in zip(scores, right, strict=True)
            if min(int(score * bins), bins - 1) == number
        ]
        if inside:
            table.append(
                {
                    "from": round(number / bins, 2),
                    "to": round((number + 1) / bins, 2),
                    "answers": len(inside),
                    "confidence": round(sum(s for s, _ in inside) / len(inside), 3),
                    "right": round(sum(ok for _, ok in inside) / len(inside), 3),
                }
            )
    return table


def expected_calibration_error(table: Sequence[dict[str, Any]]) -> float:
    """The answers' mean gap between confidence and share right, bin by bin."""
    total = sum(row["answers"] for row in table)
    return sum(row["answers"] * abs(row["confidence"] - row["right"]) for row in table) / max(total, 1)
