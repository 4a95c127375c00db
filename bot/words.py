"""Words every front end shares: counts ("1 passage", "2 passages") and how sure an answer is."""

from __future__ import annotations

import math
import re


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """`count` and `noun`, in the plural unless `count` is 1: plural(1, "new passage") is "1 new passage"."""
    return f"{count} {noun if count == 1 else plural_noun or noun + 's'}"


# The confidence bands of an answer (Answer.confidence), as every front end names them.
BAND_WORDS = {"sure": "sure", "unsure": "not sure", "none": "not found"}
UNSURE_LEAD = "Not sure. The closest passage says:"
NO_QUESTION_FOR_MORE = "Ask a question first; then /more shows the other answers I found."


def shown_score(score: float) -> float:
    """A confidence as the front ends show it, to two decimals rounded down, so that an answer under
    the sure band's threshold never reads as reaching it (0.857 shows as 0.85 beside 0.86)."""
    return math.floor(score * 100 + 1e-9) / 100


def no_other_answers(question: str) -> str:
    return f"I found no other answer to “{question}”."


NO_WORDS = "I can only answer questions in words: please write your question as text."


def unreadable_question(question: str) -> str | None:
    """Why a question cannot be asked as it is (no letter or digit: emoji, punctuation), or None."""
    if not any(character.isalnum() for character in question):
        return NO_WORDS
    return None


# The engine's errors speak to the command line: they name the `qabot` command that fixes them
# (`qabot ask "…"`, `qabot index --rebuild`). A chat front end says its own words instead.
_COMMAND_LINE = re.compile(r"\bqabot (?:index|ask|chat|bot|eval|refresh|sources|remove|models|feeds|store)\b")


def names_a_command(message: str) -> bool:
    """True when `message` tells its reader to run a `qabot` command: words for the command line."""
    return _COMMAND_LINE.search(message) is not None
