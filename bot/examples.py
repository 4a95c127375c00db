"""Example questions the bot has checked it can answer, made from the indexed articles (for /start).

Candidates are made simply from each article's title and first sentences: a sentence that starts
with its subject and a verb, "Prime minister Luís Montenegro opened the new Tagus bridge in Lisbon
on Saturday, ...", becomes "Who opened the new Tagus bridge in Lisbon on Saturday?" ("What ...?"
when the subject is a thing). Each candidate is asked through the engine, and only those answered
with confidence "sure" are kept, one an article at most. The checked examples are kept for
`CACHE_SECONDS`, and made again at once when the index has changed.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from retrieval.errors import QabotError

CACHE_SECONDS = 15 * 60
# Engine calls one check makes at most, and sentences read from the start of each article.
MAX_CHECKS = 12
FIRST_SENTENCES = 3
MAX_SUBJECT_WORDS = 6
MAX_QUESTION_WORDS = 14
# Past tenses that do not end in -ed; headline verbs end in -s ("Nigeria starts", "Lisbon opens").
_IRREGULAR = {"said", "won", "beat", "began", "took", "made", "gave", "came", "went", "told", "found", "met", "led"}
_PAST = re.compile(r"[a-z]+[^e]ed|[a-z]+ied")
_HEADLINE = re.compile(r"[a-z]+[^s]s")
_PRONOUNS = {"he", "she", "it", "they", "we", "i", "you", "this", "that", "these", "those", "there"}
_DETERMINERS = {"the", "a", "an", "its", "their", "his", "her", "our", "this", "that"}
_AUXILIARIES = {"was", "were", "is", "are", "has", "have", "had", "been", "be", "will", "would", "could"}
_PREPOSITIONS = {"in", "on", "at", "of", "from", "for", "with", "to", "by", "and", "or"}
_CLAUSE_END = re.compile(r",(?!\d)|;|:| and | but | after | because | while | which | who |\s[–—-]\s")


def _is_past(word: str) -> bool:
    return word in _IRREGULAR or _PAST.fullmatch(word) is not None


def _verb_at(words: list[str], position: int) -> bool:
    """Whether words[position] is the verb after a subject: a past tense, or a headline's -s verb
    right after a name and not followed by a preposition or another verb ("Rescue teams used")."""
    word = words[position]
    if _is_past(word):
        return True
    following = words[position + 1].lower() if position + 1 < len(words) else ""
    before = words[position - 1]
    return (
        _HEADLINE.fullmatch(word) is not None
        and before[:1].isupper()
        and before.lower() not in _DETERMINERS
        and following not in _PREPOSITIONS
        and not _is_past(following)
    )


def candidate_question(sentence: str) -> str | None:
    """A "Who/What <verb> <rest>?" question from a sentence led by its subject, or None."""
    words = sentence.strip().rstrip(".!?").split()
    for position, word in enumerate(words[: MAX_SUBJECT_WORDS + 1]):
        if not word[:1].islower() or position == 0:
            continue
        if not _verb_at(words, position):
            continue  # still the subject: "Prime minister Luís Montenegro opened", "Rescue teams used"
        while position > 1 and words[position - 1].lower() in _AUXILIARIES:  # "was delayed", "has been found"
            position -= 1
        subject = words[:position]
        if any(part.endswith(",") for part in subject) or not subject[0][:1].isupper():
            return None
        if len(subject) == 1 and subject[0].lower() in _PRONOUNS | _DETERMINERS:
            return None
        named = any(part[:1].isupper() for part in subject[1:])
        asker = "Who" if named or len(subject) == 1 else "What"  # "Prime minister X", "Nigeria"; "Heavy rain"
        rest = _CLAUSE_END.split(" ".join(words[position:]), maxsplit=1)[0].split()
        if len(rest) < 3 or len(rest) > MAX_QUESTION_WORDS:
            return None
        return f"{asker} {' '.join(rest)}?"
    return None


def _articles(engine: Any) -> dict[str, list[str]]:
    """Per article (by source): its title and first sentences, where the store can give them."""
    texts: dict[str, list[str]] = {
        source: [str(entry.get("title", ""))] for source, entry in engine.store.sources().items()
    }
    data = getattr(engine.store, "data", None)  # the embedded index holds the passages in memory
    for passage in getattr(data, "passages", ()):
        sentences = texts.setdefault(passage.source, [passage.title])
        if len(sentences) <= FIRST_SENTENCES:
            sentences.extend(passage.sentences()[: FIRST_SENTENCES + 1 - len(sentences)])
    return texts


def _interleaved(candidates: dict[str, list[str]]) -> Iterator[tuple[str, str]]:
    """(source, question): each article's first candidate, then each one's second, ..."""
    queues = [(source, list(dict.fromkeys(questions))) for source, questions in candidates.items() if questions]
    for round_ in range(max((len(questions) for _, questions in queues), default=0)):
        for source, questions in queues:
            if round_ < len(questions):
                yield source, questions[round_]


def checked_examples(engine: Any, n: int = 3) -> list[str]:
    """Up to `n` questions about different articles, each answered "sure" by `engine` just now."""
    candidates = {
        source: [question for question in map(candidate_question, sentences) if question]
        for source, sentences in _articles(engine).items()
    }
    found: dict[str, str] = {}
    for checks, (source, question) in enumerate(_interleaved(candidates)):
        if len(found) >= n or checks >= MAX_CHECKS:
            break
        if source in found:
            continue
        try:
            answer = engine.ask(question)
        except QabotError:
            continue
        if answer.confidence == "sure":
            found[source] = question
    return list(found.values())


class ExampleQuestions:
    """Checked examples, kept for `CACHE_SECONDS` and while the index's articles stay the same."""

    def __init__(self, engine: Any, n: int = 3, seconds: float = CACHE_SECONDS) -> None:
        self.engine = engine
        self.n = n
        self.seconds = seconds
        self._lock = threading.Lock()
        self._cached: tuple[str, float, list[str]] | None = None

    def _fingerprint(self) -> str:
        sources = self.engine.store.sources()
        listing = sorted((source, str(entry.get("file_hash", ""))) for source, entry in sources.items())
        return hashlib.sha256(repr(listing).encode("utf-8", "replace")).hexdigest()

    def get(self) -> list[str]:
        """The examples, checked again when the index changed or they are older than `seconds`."""
        with self._lock:
            fingerprint = self._fingerprint()
            if self._cached and self._cached[0] == fingerprint and time.monotonic() - self._cached[1] < self.seconds:
                return self._cached[2]
            examples = checked_examples(self.engine, self.n)
            self._cached = (fingerprint, time.monotonic(), examples)
            return examples
