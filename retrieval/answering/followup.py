"""Follow-up questions: "When did he do that?" is searched together with the turn it continues."""

from __future__ import annotations

import re
from typing import Any

from haystack import component

from retrieval.answering.answer import Turn

# Words that point back to something said before; a question using one continues the conversation.
# "this"/"that" count only where they stand for a thing ("Why did that happen?"), not before a
# noun ("this year").
_BACK_REFERENCES = re.compile(
    r"\b(he|she|it|they|him|her|them|his|hers|its|their|theirs|there|then|the same|else|also|too)\b"
    r"|\b(this|that|these|those)\b(?=\s*(?:[?.!,;]|$|(?:is|was|were|are|be|been|happen|happened|mean|means|"
    r"do|did|does|take|took|say|said)\b))",
    re.IGNORECASE,
)
_CONTENT_WORD = re.compile(r"[A-Za-z0-9]{4,}")


def is_follow_up(question: str) -> bool:
    """True for questions that lean on the previous turn: back-references or too few words of their own."""
    return bool(_BACK_REFERENCES.search(question)) or len(_CONTENT_WORD.findall(question)) < 2


@component
class FollowUpContextualizer:
    """Builds the search query and the reader's question from a question and the conversation so far."""

    @component.output_types(search_query=str, question=str, context=str, reader_question=str)
    def run(self, question: str, history: list[Turn] | None = None) -> dict[str, Any]:
        """`search_query` finds passages; `question` with its `context` (the earlier question, or "")
        picks the sentence; the reader gets `reader_question`."""
        previous = history[-1] if history else None
        if previous is None or not is_follow_up(question):
            return {"search_query": question, "question": question, "context": "", "reader_question": question}
        said = previous.answer.evidence or previous.answer.text if previous.answer.known else ""
        context = " ".join(part for part in (previous.question, said) if part)
        # The search sees the whole earlier turn. The sentence choice and the reader see only the
        # earlier question: the earlier answer's own sentence would otherwise win again.
        return {
            "search_query": f"{question} {context}",
            "question": question,
            "context": previous.question,
            "reader_question": f"{question} ({previous.question})",
        }
