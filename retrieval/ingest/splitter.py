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

# The longest sentence kept whole. A longer run (a page of one 30,000-word sentence, a list without
# full stops) is cut into pieces of at most this many words and characters, so that no sentence
# costs the models or the reply more than a normal one: every question's work stays bounded.
MAX_SENTENCE_WORDS = 60
MAX_SENTENCE_CHARS = 600
# Paragraphs are segmented in slices of this size, so that one huge paragraph is never handled whole.
_SLICE = 20_000


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Sentences of `text`; a paragraph break always ends a sentence (captions, datelines); a
    run-on sentence comes in pieces of at most MAX_SENTENCE_WORDS words and MAX_SENTENCE_CHARS characters."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = _SPACES.sub(" ", paragraph).strip()
        for piece in _slices(paragraph):
            for sentence in sentencex.segment(language, piece):
                sentences.extend(_capped(sentence.strip()))
    return sentences


def _slices(paragraph: str) -> list[str]:
    """The paragraph in slices of about _SLICE characters, cut at a space where there is one."""
    slices = []
    while len(paragraph) > _SLICE:
        cut = paragraph.rfind(" ", _SLICE // 2, _SLICE)
        cut = cut if cut > 0 else _SLICE
        slices.append(paragraph[:cut].strip())
        paragraph = paragraph[cut:].strip()
    return [*slices, paragraph] if paragraph else slices


def _capped(sentence: str) -> list[str]:
    """The sentence, or its pieces when it is longer than the caps (a word over the character cap is cut)."""
    if not sentence:
        return []
    words = sentence.split(" ")
    if len(words) <= MAX_SENTENCE_WORDS and len(sentence) <= MAX_SENTENCE_CHARS:
        return [sentence]
    pieces, current, size = [], [], 0
    for word in words:
        for part in (word[i : i + MAX_SENTENCE_CHARS] for i in range(0, len(word), MAX_SENTENCE_CHARS)):
            if current and (len(current) == MAX_SENTENCE_WORDS or size + 1 + len(part) > MAX_SENTENCE_CHARS):
                pieces.append(" ".join(current))
                current, size = [], 0
            current.append(part)
            size += len(part) + (1 if size else 0)
    return [*pieces, " ".join(current)] if current else pieces


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
