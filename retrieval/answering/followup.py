"""Follow-up questions: "When did he do that?" is searched together with the turn it continues.

Telling a follow-up from a new question is done with explicit rules rather than a library: the
offline coreference resolvers (spaCy with coreferee or fastcoref) need models of hundreds of
megabytes that cannot be downloaded at run time, and would cost seconds at start for what a chat
question shows plainly. A question continues the conversation when it has

* a pronoun or possessive with no antecedent in the question itself ("Who is its boss?", "How much
  did it cost?"; not "Why did ASML say it would cut jobs?", where "ASML" comes before "it"): an
  antecedent is a capitalised word after the first, a noun after "the", "a" or "an", or for
  "they"/"their" a plural word ("Will engineers lose their jobs?");
* "that", "this", "those" standing for a thing ("Why did that happen?"), or words that lean on what
  was said ("there", "then", "else", "also", "too", "the same");
* it opens with "and", "but", "what about" or "how about";
* no name of its own (a capitalised word after the first, or a number) and one to three words ("How
  many?", "Why?") or fewer than two content words of four letters or more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from haystack import component

from retrieval.answering.answer import Turn

# Only the last few turns are read: a follow-up leans on the turn before, rarely on older ones.
RECENT_TURNS = 4

_PRONOUNS = {"he", "she", "it", "they", "him", "her", "them", "his", "hers", "its", "their", "theirs"}
_PLURAL_PRONOUNS = {"they", "them", "their", "theirs"}
_LEANING = re.compile(
    r"\b(there|then|else|also|too|the same)\b"
    r"|\b(this|that|these|those)\b(?=\s*(?:[?.!,;]|$|(?:is|was|were|are|be|been|happen|happened|mean|means|"
    r"do|did|does|take|took|say|said|cost|costs)\b))",
    re.IGNORECASE,
)
_OPENERS = re.compile(r"^\s*(and|what about|how about|but)\b", re.IGNORECASE)
_DETERMINERS = {"the", "a", "an"}
_CONTENT_WORD = re.compile(r"[A-Za-z0-9]{4,}")
_WORD = re.compile(r"[\w'’-]+")


def _has_name(words: list[str]) -> bool:
    """A capitalised word after the first (a name: "Faenza", "ASML"), or a number."""
    return any(word[:1].isupper() or word[:1].isdigit() for word in words[1:])


def _dangling_pronoun(words: list[str]) -> bool:
    """A pronoun with nothing before it in the question that it could stand for."""
    for position, word in enumerate(words):
        if word.lower() in _PRONOUNS:
            before = words[:position]
            named = _has_name(before) or any(
                w.lower() in _DETERMINERS and i + 1 < len(before) for i, w in enumerate(before)
            )
            if word.lower() in _PLURAL_PRONOUNS:  # "Will engineers lose their jobs?"
                named = named or any(len(w) > 3 and w.lower().endswith("s") for w in before[1:])
            if not named:
                return True
    return False


def is_follow_up(question: str) -> bool:
    """True for questions that lean on the previous turn (see the module's rules)."""
    words = _WORD.findall(question)
    if _dangling_pronoun(words) or _LEANING.search(question) or _OPENERS.search(question):
        return True
    if _has_name(words):
        return False
    return len(words) <= 3 or len(_CONTENT_WORD.findall(question)) < 2


def story_turn(history: Sequence[Turn]) -> Turn | None:
    """The latest of the recent turns that the articles answered: the story a follow-up stays on."""
    for turn in reversed(history[-RECENT_TURNS:]):
        if turn.answer.known and turn.answer.source:
            return turn
    return None


@component
class FollowUpContextualizer:
    """Builds the search query and the reader's question from a question and the conversation so far.

    `speller` (optional) corrects misspelt words of the question first (see `spelling.py`). A
    follow-up of a turn the articles answered names that answer's article in `story` (unless
    `keep_story` is False): the answer is looked for there first.
    """

    def __init__(self, speller: Callable[[str], str] | None = None) -> None:
        self.speller = speller

    @component.output_types(
        search_query=str, question=str, context=str, reader_question=str, story=str, follow_up=bool, referent=str
    )
    def run(self, question: str, history: list[Turn] | None = None, keep_story: bool = True) -> dict[str, Any]:
        """`search_query` finds passages; `question` with its `context` (the earlier question, or "")
        picks the sentence; the reader gets `reader_question`. `referent` is the earlier answer a
        follow-up leans on ("Mark Esper" for "What is his job?"): what "he" stands for is not what is asked."""
        if self.speller is not None:
            question = self.speller(question)
        recent = list(history or ())[-RECENT_TURNS:]
        previous = story_turn(recent) or (recent[-1] if recent and recent[-1].answer.kind != "reply" else None)
        if previous is None or not is_follow_up(question):
            return {
                "search_query": question,
                "question": question,
                "context": "",
                "reader_question": question,
                "story": "",
                "follow_up": False,
                "referent": "",
            }
        said = previous.answer.evidence or previous.answer.text if previous.answer.known else ""
        # A follow-up of a follow-up ("When did it land?" after "How deep can its drill reach?") is
        # read with the question that opened the story, which names what "it" is; the search sees both.
        opener = next((t.question for t in reversed(recent) if not is_follow_up(t.question)), previous.question)
        earlier = previous.question if opener == previous.question else f"{previous.question} {opener}"
        context = " ".join(part for part in (earlier, said) if part)
        # The search sees the whole earlier turn. The sentence choice and the reader see only the
        # earlier question: the earlier answer's own sentence would otherwise win again.
        return {
            "search_query": f"{question} {context}",
            "question": question,
            "context": opener,
            "reader_question": f"{question} ({opener})",
            "story": previous.answer.source if keep_story and previous.answer.known else "",
            "follow_up": True,
            "referent": previous.answer.text if previous.answer.kind == "extractive" else "",
        }
