"""Misspelt question words, corrected against the index's own vocabulary with SymSpell.

"Hwo much did the brige cost?" is searched as "How much did the bridge cost?". A word is corrected
only when it is neither a word the indexed articles use nor an English word (the 82,765-word
frequency list that ships with symspellpy), is three letters or more, and has a single closest
word in the articles' vocabulary or among the function words (`STOPWORDS`) within one edit (words
of up to five letters) or two (longer words). Words that are right but rare ("Who lives in
Faenza?") are left alone; so are names the index does not know. Backends whose lexicon lists no
words (Milvus) get no correction.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from retrieval.stores.terms import STOPWORDS

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Question words and auxiliaries come first among equally close corrections ("hwo" is "how").
_QUESTION_WORDS = ("how", "what", "who", "when", "where", "which", "why", "did", "does", "was", "were")


@cache
def english_words() -> frozenset[str]:
    """The English words symspellpy ships (lower case); read once, on the first unknown word."""
    text = resources.files("symspellpy").joinpath("frequency_dictionary_en_82_765.txt").read_text("utf-8")
    return frozenset(line.split(" ", 1)[0] for line in text.splitlines() if line)


class SpellingCorrector:
    """Corrects the misspelt words of a question against `lexicon()`'s words (see the module)."""

    def __init__(self, lexicon: Callable[[], Any]) -> None:
        self.lexicon = lexicon
        self._speller: Any = None
        self._words: dict[str, int] = {}
        self._of: Any = None
        self._lock = threading.Lock()

    def vocabulary(self) -> dict[str, int]:
        """The articles' words and how common each is ({} when the backend lists none)."""
        lexicon = self.lexicon()
        words = getattr(lexicon, "words", None)
        with self._lock:
            if lexicon is not self._of:
                self._of, self._speller = lexicon, None
                self._words = words() if callable(words) else {}
            return self._words

    def known(self, word: str) -> bool:
        """Whether `word` (any case) is an English word, a function word or a word of the articles."""
        word = word.lower()
        return word in STOPWORDS or word in english_words() or word in self.vocabulary()

    def _symspell(self) -> Any:
        vocabulary = self.vocabulary()
        with self._lock:
            if self._speller is None:
                from symspellpy import SymSpell

                speller = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
                top = max(vocabulary.values(), default=1) + 1
                for word, count in vocabulary.items():
                    speller.create_dictionary_entry(word, count)
                for word in STOPWORDS:
                    speller.create_dictionary_entry(word, top)
                for rank, word in enumerate(reversed(_QUESTION_WORDS)):
                    speller.create_dictionary_entry(word, top * (rank + 2))
                self._speller = speller
            return self._speller

    def correct_word(self, word: str) -> str:
        """The correction of one word, in the word's case; the word itself when it needs none or has no
        single closest correction."""
        lower = word.lower()
        if len(lower) < 3 or self.known(lower) or not self.vocabulary():
            return word
        from symspellpy import Verbosity

        distance = 1 if len(lower) <= 5 else 2
        found = self._symspell().lookup(lower, Verbosity.CLOSEST, max_edit_distance=distance)
        if not found:
            return word
        best = found[0]
        rivals = [s for s in found[1:] if s.distance == best.distance and s.count * 2 > best.count]
        if rivals and best.term not in STOPWORDS:  # two words as close and as common: no guess
            return word
        fixed = best.term
        if word[:1].isupper():
            fixed = fixed[:1].upper() + fixed[1:]
        return fixed

    def __call__(self, question: str) -> str:
        """The question with its misspelt words corrected (the question itself when none is)."""
        return _WORD.sub(lambda match: self.correct_word(match.group(0)), question)
