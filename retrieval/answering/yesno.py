"""Yes/no questions ("Did Wrexham beat Coventry?"): "Yes" or "No" only where the evidence says so plainly.

A question is yes/no when it opens with an auxiliary ("did", "is", "has", "will", ...). Its answer
is "Yes" when every term of the question (stemmed, function words aside) is in the evidence
sentence or its article's title and the sentence has no negation; "No" when the same holds and the
sentence has a plain negation ("not", "n't", "no", "never", ...). Otherwise, and whenever the
question itself is negated, the answer is the evidence sentence, as a sentence answer: the reader
is not asked to guess.
"""

from __future__ import annotations

import re
from dataclasses import replace

from retrieval.answering.answer import Answer
from retrieval.stores.terms import question_terms

_AUXILIARIES = (
    "did|does|do|is|are|was|were|has|have|had|can|could|will|would|should|shall|may|might|must|"
    "didn't|doesn't|don't|isn't|aren't|wasn't|weren't|hasn't|haven't|hadn't|won't|can't"
)
_YES_NO = re.compile(rf"^\s*(?:{_AUXILIARIES})\s+\w", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|without|cannot)\b|n['’]t\b", re.IGNORECASE)


def is_yes_no(question: str) -> bool:
    """Whether `question` asks for a yes or a no ("Did ...?", "Is ...?"; not "Who did ...?")."""
    return bool(_YES_NO.match(question))


def yes_no_answer(answer: Answer, asked: str) -> Answer:
    """`answer` to the yes/no question `asked` as "Yes", "No" or its evidence sentence (see the module).

    Answers that are no answer from the articles are returned as they are.
    """
    if not answer.known or not answer.evidence:
        return answer
    terms = question_terms(asked)
    said = question_terms(f"{answer.title}\n{answer.evidence}")
    plain = bool(terms) and terms <= said and not _NEGATION.search(asked)
    if plain:
        text = "No" if _NEGATION.search(answer.evidence) else "Yes"
        return replace(answer, text=text, answer_start=-1, answer_end=-1)
    return replace(answer, text=answer.evidence, kind="sentence", answer_start=0, answer_end=len(answer.evidence))
