"""What `/sources` says about an answer, for every front end: the answer's article and close runners-up,
or, after "I don't know", the articles that were looked at.

Titles, dates and web addresses only: no scores, and no file names (a file's name is often a hash,
and its folder is nobody's business), so a file article is shown by its title.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from bot.words import plural
from retrieval.answering.answer import Answer

# A passage from another article is a runner-up when it scored at least this share of the best
# passage's score (the ranker's passage scores, best first); at most MAX_RUNNERS_UP are shown.
RUNNER_UP_SHARE = 0.8
MAX_RUNNERS_UP = 2
UNTITLED = "an untitled article"
NO_QUESTION_FOR_SOURCES = "Ask a question first; then /sources shows where the answer came from."
OWN_WORDS = "My last reply was in my own words, not from the articles."


class Article(NamedTuple):
    """An article as /sources names it: its title, its date and its web address (when known)."""

    title: str
    published: str = ""
    url: str = ""


@dataclass(frozen=True)
class Sources:
    """`article` the answer came from (None for "I don't know"), `runners_up` from other articles,
    `looked_at` every article among the passages (best first)."""

    question: str
    article: Article | None
    runners_up: tuple[Article, ...]
    looked_at: tuple[Article, ...]


def _article(title: str, source: str, published: str, url: str) -> Article:
    web = url or (source if source.startswith(("http://", "https://")) else "")
    return Article(title.strip() or web or UNTITLED, published, web)


def sources_of(answer: Answer) -> Sources:
    """The articles behind `answer` (see `RUNNER_UP_SHARE` for which other articles are shown)."""
    by_source: dict[str, Article] = {}
    best = max((passage.score for passage in answer.passages), default=0.0)
    close: list[str] = []
    for passage in sorted(answer.passages, key=lambda passage: -passage.score):
        if passage.source not in by_source:
            by_source[passage.source] = _article(passage.title, passage.source, passage.published, passage.url)
            if best > 0 and passage.score >= RUNNER_UP_SHARE * best:
                close.append(passage.source)
    if not answer.known:
        return Sources(answer.question, None, (), tuple(by_source.values()))
    article = _article(answer.title, answer.source, answer.published, answer.url)
    others = [by_source[source] for source in close if source != answer.source]
    runners_up = tuple(other for other in others if other.title.casefold() != article.title.casefold())
    return Sources(answer.question, article, runners_up[:MAX_RUNNERS_UP], tuple(by_source.values()))


def joined(names: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def looked_at_line(articles: tuple[Article, ...]) -> str:
    """ "I looked at 3 articles: “A”, “B” and “C”." (one line, after an answer the bot did not know)."""
    if not articles:
        return "I found no article to look at."
    titles = [f"“{article.title}”" for article in articles]
    return f"I looked at {plural(len(articles), 'article')}: {joined(titles)}."
