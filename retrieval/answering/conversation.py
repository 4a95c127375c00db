"""A conversation's turn: the bot's own reply, or an answer that keeps a follow-up on its story.

`reply_to` answers small talk and messages that are no English question in the bot's own words;
`answer_in_story` runs the question pipeline for a follow-up on the previous answer's article
first, and on every article when that one has no answer, saying so when the answer moved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from retrieval.answering.answer import Answer, Turn
from retrieval.answering.followup import RECENT_TURNS
from retrieval.answering.language import language_reply
from retrieval.answering.smalltalk import reply_text, small_talk
from retrieval.answering.story import moved_notice
from retrieval.answering.yesno import is_yes_no, yes_no_answer


def recent(history: Sequence[Turn]) -> list[Turn]:
    """The turns a question may lean on: the last few (front ends may keep many more)."""
    return list(history[-RECENT_TURNS:]) if history else []


def reply(question: str, text: str) -> Answer:
    """The bot's own words as an Answer of kind "reply"."""
    return Answer(question=question, text=text, score=0.0, kind="reply")


def reply_to(question: str, known: Callable[[str], bool], example: Callable[[], str]) -> Answer | None:
    """The bot's reply to small talk, or to a message that is not an English question; None for a question.

    `known(word)`: whether a word is English or the articles'; `example()`: a question to suggest.
    """
    intent = small_talk(question)
    if intent is not None:
        hint = example() if intent in {"greeting", "identity", "ability", "help"} else ""
        return reply(question, reply_text(intent, hint))
    text = language_reply(question, known)
    return reply(question, text) if text is not None else None


# One run of the question pipeline: (keep_story) -> (the Answer, the follow-up step's outputs: the
# question as read, after spelling correction, and the story article's source or "").
Run = Callable[[bool], tuple[Answer, dict[str, Any]]]


def answer_in_story(run: Run) -> Answer:
    """The answer from one or two runs: a follow-up's story article first, every article when it has
    none; a yes/no question's answer as "Yes", "No" or its sentence (see `yesno.py`)."""
    answer, read = run(True)
    story = read.get("story", "")
    if story and not answer.known:
        answer, _ = run(False)
        if answer.known and answer.source != story:
            answer = _with_notice(answer, moved_notice(answer.title))
    asked = read.get("question", answer.question)
    return yes_no_answer(answer, asked) if is_yes_no(asked) else answer


def _with_notice(answer: Answer, notice: str) -> Answer:
    from dataclasses import replace

    return replace(answer, notices=(*answer.notices, notice))


def pipeline_inputs(question: str, history: list[Turn], keep_story: bool) -> dict[str, Any]:
    """The question pipeline's inputs for one run."""
    return {"followup": {"question": question, "history": history, "keep_story": keep_story}}
