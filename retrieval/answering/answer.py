"""The values the engine hands to every front end: an answer, its passages and a conversation turn."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# "reply": the bot's own words, not from the articles (small talk, a question in another language);
# `text` holds them, and every front end shows them as a plain message.
AnswerKind = Literal["extractive", "sentence", "none", "reply"]
# How far to trust an answer: "sure" (shown as the answer), "unsure" (shown as what the closest
# passage says), "none" (the bot does not know).
Confidence = Literal["sure", "unsure", "none"]


@dataclass(frozen=True)
class Passage:
    """One retrieved passage: where an answer may come from."""

    id: str
    text: str
    title: str
    source: str
    score: float
    published: str = ""  # the article's date, YYYY-MM-DD, when known
    url: str = ""  # the article's web address, for articles from the web


@dataclass(frozen=True)
class Alternative:
    """Another answer the reader found for the same question, less likely than the one given."""

    text: str
    score: float
    evidence: str
    title: str
    source: str = ""
    published: str = ""
    url: str = ""


@dataclass(frozen=True)
class Answer:
    """What the engine answers to one question.

    `kind` is "extractive" (a span found by the reader model), "sentence" (the best-matching
    sentence, used when no reader model is available) or "none" (the bot does not know).
    `evidence` is the sentence the answer came from; `answer_start`/`answer_end` locate the
    answer inside `evidence` (both -1 when it is not a substring of it). `confidence` is the band
    every front end shows (see `Confidence`); `alternatives` the next distinct answers, best first.
    `coverage` is the share of the question's terms, weighed by rarity, that a span answer's passage
    and title hold (a sure answer needs the reader's `sure_coverage`; 0 for other answers).
    """

    question: str
    text: str
    score: float
    kind: AnswerKind
    evidence: str = ""
    title: str = ""
    source: str = ""
    passages: tuple[Passage, ...] = ()
    answer_start: int = -1
    answer_end: int = -1
    search_query: str = ""
    notices: tuple[str, ...] = field(default=())
    published: str = ""
    url: str = ""
    confidence: Confidence = "sure"
    alternatives: tuple[Alternative, ...] = ()
    coverage: float = 0.0

    def __post_init__(self) -> None:
        if self.kind in {"none", "reply"}:  # no answer from the articles has no band but "none"
            object.__setattr__(self, "confidence", "none")

    @property
    def known(self) -> bool:
        """Whether the articles gave an answer (a reply of the bot's own is none)."""
        return self.kind not in {"none", "reply"}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the `--json` output of `qabot ask`)."""
        data = asdict(self)
        data["answer"] = data.pop("text")
        data["passages"] = [asdict(p) for p in self.passages]
        data["alternatives"] = [asdict(a) for a in self.alternatives]
        data["notices"] = list(self.notices)
        return data


@dataclass(frozen=True)
class Turn:
    """One question and its answer, kept so that follow-up questions can be understood."""

    question: str
    answer: Answer
