"""Tempting unanswerable windows: the question against sentences of another article that share its
rare terms and hold something of the answer's type (a number, a name). They are what misleads a
reader at question time ("How much did the new rover cost?" read against the bridge's cost), so the
reader learns that the right type about another subject is no answer."""

from __future__ import annotations

import random
import re
from collections import Counter

from retrieval.stores.terms import question_terms

# a term in more sentences than this is no key term (a subject is named in a few places)
MOST_SENTENCES_A_KEY_TERM = 200
_NAME_INSIDE = re.compile(r"[\w,;:)] +[A-Z][a-z]")  # a capitalised word that does not start a sentence


def answer_type(answer: str) -> str:
    """ "number" (digits), "name" (capitalised) or "other"."""
    if re.search(r"\d", answer):
        return "number"
    return "name" if answer[:1].isupper() else "other"


def holds_type(text: str, kind: str) -> bool:
    if kind == "number":
        return re.search(r"\d", text) is not None
    if kind == "name":
        return _NAME_INSIDE.search(text) is not None
    return True


class TemptingWindows:
    """Sentences of every paragraph indexed by their key terms.

    `sentences[n]` are paragraph n's sentence texts and `groups[n]` its article."""

    def __init__(self, sentences: list[list[str]], groups: list[str]) -> None:
        self.sentences, self.groups = sentences, groups
        terms_of = [[question_terms(s) for s in paragraph] for paragraph in sentences]
        frequency = Counter(term for paragraph in terms_of for terms in paragraph for term in terms)
        self.postings: dict[str, list[tuple[int, int]]] = {}
        for number, paragraph in enumerate(terms_of):
            for index, terms in enumerate(paragraph):
                for term in terms:
                    if frequency[term] <= MOST_SENTENCES_A_KEY_TERM:
                        self.postings.setdefault(term, []).append((number, index))

    def window_for(self, question: str, answers: tuple[str, ...], group: str, rng: random.Random) -> str | None:
        """A sentence (with a neighbour or two) from another article that shares the most key terms
        with the question, at least two (one for a question with one), holds something of the
        answer's type and none of its answers; None when no sentence does."""
        keys = [term for term in question_terms(question) if term in self.postings]
        if not keys:
            return None
        shared: Counter[tuple[int, int]] = Counter()
        for term in keys:
            shared.update(place for place in self.postings[term] if self.groups[place[0]] != group)
        least = min(2, len(keys))
        kind = answer_type(answers[0]) if answers else "other"
        lowered = [a.strip().lower() for a in answers if a.strip()]
        # the best-sharing places first; ties in a seeded random order
        places = sorted((p for p, n in shared.items() if n >= least), key=lambda p: (-shared[p], rng.random()))
        for number, index in places[:20]:
            paragraph = self.sentences[number]
            first = max(0, index - rng.randint(0, 1))
            last = min(len(paragraph) - 1, index + rng.randint(0, 1))
            window = " ".join(paragraph[first : last + 1])
            if holds_type(paragraph[index], kind) and not any(a in window.lower() for a in lowered):
                return window
        return None
