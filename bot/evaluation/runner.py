"""Asking a question set through the bots' own `QAEngine.ask`, follow-ups with their history, timed.

So the numbers are the users' numbers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.evaluation.questionsets import EvalQuestion, QuestionSet
from retrieval.answering.answer import Answer, Turn


class Asker(Protocol):
    """What evaluation needs from the engine: the bots' own `ask`."""

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer: ...


@dataclass(frozen=True)
class QuestionResult:
    """One question, the engine's answer to it, and how long the answer took."""

    question: EvalQuestion
    answer: Answer
    latency_ms: float

    @property
    def prediction(self) -> str:
        """What the user was told; an abstention predicts the empty answer, as in SQuAD 2.0."""
        return self.answer.text if self.answer.known else ""


def run_questions(engine: Asker, question_set: QuestionSet, console: Console | None = None) -> list[QuestionResult]:
    """Ask every question in order, replaying each follow-up after the conversation it continues."""
    conversations: dict[str, tuple[Turn, ...]] = {}
    results = []
    columns = (TextColumn("Asking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("ask", total=len(question_set.questions))
        for question in question_set.questions:
            history = conversations[question.follow_up_of] if question.follow_up_of else ()
            start = time.perf_counter()
            answer = engine.ask(question.question, history)
            latency_ms = (time.perf_counter() - start) * 1000
            conversations[question.id] = (*history, Turn(question.question, answer))
            results.append(QuestionResult(question, answer, latency_ms))
            progress.advance(task)
    return results
