"""How passages and questions are cut into search terms, the same on every backend: English stemming
and a list of function words; a passage is searched by its title and its text."""

from __future__ import annotations

import re

import bm25s
import Stemmer

from retrieval.stores.protocol import PassageRecord


def stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


# Function words: pronouns, auxiliaries, determiners, prepositions, question words. Words that
# change meaning ("not", "no", "first", "last", "most") stay searchable.
STOPWORDS = frozenset(
    """a an the and or but if of at by for with about against between into through during before after
    above below to from up down in out on off over under again further then once here there when where
    why how all any both each other some such own same so than too very can will just should now i me
    my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
    herself it its itself they them their theirs themselves what which who whom whose this that these
    those am is are was were be been being have has had having do does did doing would could might must
    shall may as until while also s t""".split()
)


def bm25_tokenizer() -> bm25s.tokenization.Tokenizer:
    return bm25s.tokenization.Tokenizer(stopwords=sorted(STOPWORDS), stemmer=stemmer())


def passage_search_text(passage: PassageRecord) -> str:
    """What the retrievers see of a passage: its article title, then its text."""
    return f"{passage.title}\n{passage.content}"


def question_terms(text: str) -> set[str]:
    """The stemmed words of `text` that search weighs (two letters or more, no function word), as
    both backends cut them; for counting a question's terms that no passage holds."""
    stem = stemmer().stemWord
    return {stem(word) for word in re.findall(r"(?u)\b\w\w+\b", text.lower()) if word not in STOPWORDS}
