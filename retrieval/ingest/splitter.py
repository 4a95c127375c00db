"""Splitting articles into passages of whole sentences, with overlap, keeping each sentence's span.

Haystack's DocumentSplitter splits by sentence only through NLTK's punkt data, which it downloads
at run time; this splitter uses `sentencex` (no data files) and records the sentence spans that
the sentence answer needs.
"""

from __future__ import annotations

import hashlib
import re

import sentencex
from haystack import Document, component

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"\s+")


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Sentences of `text`; a paragraph break always ends a sentence (captions, datelines)."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = _SPACES.sub(" ", paragraph).strip()
        if paragraph:
            sentences.extend(s.strip() for s in sentencex.segment(language, paragraph) if s.strip())
    return sentences


def passage_id(source: str, content: str) -> str:
    """Ids come from content, so re-indexing the same text gives the same ids."""
    return hashlib.sha256(f"{source}\x00{content}".encode()).hexdigest()[:32]


@component
class SentencePassageSplitter:
    """Groups sentences into passages of up to `passage_words` words, repeating `overlap_sentences`."""

    def __init__(
        self,
        passage_words: int = 120,
        overlap_sentences: int = 1,
        max_passages: int = 5000,
        language: str = "en",
    ) -> None:
        self.passage_words = passage_words
        self.overlap_sentences = overlap_sentences
        self.max_passages = max_passages
        self.language = language

    def _groups(self, sentences: list[str]) -> list[list[str]]:
        groups: list[list[str]] = []
        start = 0
        while start < len(sentences) and len(groups) < self.max_passages:
            end, words = start, 0
            while end < len(sentences) and (end == start or words + len(sentences[end].split()) <= self.passage_words):
                words += len(sentences[end].split())
                end += 1
            groups.append(sentences[start:end])
            if end >= len(sentences):
                break
            start = max(end - self.overlap_sentences, start + 1)
        return groups

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Split each article into passages; each passage's meta has `sentence_spans` [[start, end], ...]."""
        passages: list[Document] = []
        for document in documents:
            sentences = split_sentences(document.content or "", self.language)
            for number, group in enumerate(self._groups(sentences)):
                spans, offset = [], 0
                for sentence in group:
                    spans.append([offset, offset + len(sentence)])
                    offset += len(sentence) + 1
                content = " ".join(group)
                meta = {**document.meta, "sentence_spans": spans, "passage_number": number}
                passages.append(Document(id=passage_id(meta.get("source", ""), content), content=content, meta=meta))
        return {"documents": passages}
