"""Keeping a follow-up on its story: the passages of the article the previous answer came from."""

from __future__ import annotations

from typing import Any

from haystack import Document, component

from retrieval.stores.protocol import PassageStore


@component
class StoryFilter:
    """Passes on only the retrieved passages of the `story` article (a source; "": all passages).

    When retrieval brought none of them, the article's passages come from the store itself
    (`PassageStore.passages_of`). An article the store no longer holds leaves all passages.
    """

    def __init__(self, store: PassageStore) -> None:
        self.store = store

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document], story: str = "") -> dict[str, Any]:
        if not story:
            return {"documents": documents}
        kept = [document for document in documents if document.meta.get("source") == story]
        if not kept:
            kept = self.store.passages_of(story)
        return {"documents": kept or documents}


def moved_notice(title: str) -> str:
    """What an answer says when a follow-up found no answer in the previous answer's article."""
    return f"Moved to another article: {title}" if title else "Moved to another article."
