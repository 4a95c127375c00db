"""How follow-up questions fared: their EM and F1, and whether they stayed on the previous answer's article."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.evaluation.runner import QuestionResult


def _story(by_id: dict[str, QuestionResult], question_id: str | None) -> str:
    """The article of the latest answered turn of the conversation up to `question_id` ("": none)."""
    while question_id is not None:
        result = by_id[question_id]
        if result.answer.known and result.answer.source:
            return result.answer.source
        question_id = result.question.follow_up_of
    return ""


def follow_up_figures(results: Sequence[QuestionResult], records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """For the questions that continue a conversation (`follow_up_of`): how many, their EM and F1, and of
    those whose conversation had an answer, the share answered from that answer's article
    (`from_story`), the share answered from another one (`left_story`) and the share that left it for a
    wrong answer (F1 < 0.5, `left_story_wrongly`). None when the set has no follow-ups."""
    by_id = {result.question.id: result for result in results}
    pairs = [(result, record) for result, record in zip(results, records, strict=True) if result.question.follow_up_of]
    if not pairs:
        return None
    judged = [(r, rec, story) for r, rec in pairs if (story := _story(by_id, r.question.follow_up_of))]
    stayed = [r.answer.known and r.answer.source == story for r, _, story in judged]
    left = [r.answer.known and r.answer.source != story for r, _, story in judged]
    wrongly = [moved and rec["f1"] < 0.5 for (_, rec, _), moved in zip(judged, left, strict=True)]

    def share(values: list[bool]) -> float | None:
        return sum(values) / len(values) if values else None

    return {
        "n": len(pairs),
        "n_with_story": len(judged),
        "exact_match": sum(rec["exact_match"] for _, rec in pairs) / len(pairs),
        "f1": sum(rec["f1"] for _, rec in pairs) / len(pairs),
        "from_story": share(stayed),
        "left_story": share(left),
        "left_story_wrongly": share(wrongly),
        "abstained": share([not r.answer.known for r, _ in pairs]),
    }


def follow_ups_line(figures: dict[str, Any]) -> str:
    """The follow-up figures in one line, for the console."""

    def show(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    return (
        f"Follow-ups: {figures['n']}, EM {show(figures['exact_match'])}, F1 {show(figures['f1'])}; "
        f"answered from the previous answer's article {show(figures['from_story'])}, "
        f"left it {show(figures['left_story'])} (wrongly {show(figures['left_story_wrongly'])})."
    )
