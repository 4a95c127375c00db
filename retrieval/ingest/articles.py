"""Reading article files into Haystack Documents: .txt, .md and .html, with a title each.

Files that are binary, not UTF-8, empty, too big or not regular files (devices, FIFOs, sockets)
are skipped with a reason, never fatal. File names that are not UTF-8 are kept with their odd bytes
written as \\xNN escapes, so that they can be stored and printed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from haystack import Document, component
from haystack.components.converters import HTMLToDocument, MarkdownToDocument, TextFileToDocument
from haystack.components.preprocessors import DocumentCleaner
from haystack.dataclasses import ByteStream

from retrieval.errors import InputError
from retrieval.files import FileRefusedError, FileTooBigError, display_path, read_regular_file

ARTICLE_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown"}
ARTICLE_SUFFIXES |= {".html": "html", ".htm": "html"}

_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


def iter_article_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Every article file under `paths`, in a stable order; a missing path is an input error.

    Inside a folder, every entry named like an article that is not itself a walked folder is
    listed, devices and FIFOs included, so that the loader can say why it skips them.
    """
    for path in paths:
        if not path.exists():
            raise InputError(f"no such file or folder: {display_path(path)}", exit_code=2)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.suffix.lower() in ARTICLE_SUFFIXES and (child.is_symlink() or not child.is_dir()):
                    yield child
        else:
            yield path


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _without_first_line(text: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip():
            return "\n".join(lines[i + 1 :])
    return ""


def _markdown_title(text: str) -> str:
    for line in text.splitlines():
        match = _MD_HEADING.match(line)
        if match:
            return match.group(1).strip()
    return _first_line(text).lstrip("#").strip()


def _html_title(text: str) -> str:
    match = _HTML_TITLE.search(text)
    return re.sub(r"\s+", " ", match.group(1)).strip() if match else ""


@component
class ArticleLoader:
    """Turns article files into one cleaned Document each, with `title`, `source` and `file_hash` meta."""

    def __init__(self, max_file_mb: float = 20.0) -> None:
        self.max_file_mb = max_file_mb
        self._converters = {
            "text": TextFileToDocument(),
            "markdown": MarkdownToDocument(progress_bar=False),
            "html": HTMLToDocument(),
        }
        # Keep line structure: paragraphs matter to the sentence splitter.
        self._cleaner = DocumentCleaner(
            remove_empty_lines=False, remove_extra_whitespaces=False, unicode_normalization="NFKC"
        )

    def _read(self, path: Path) -> tuple[str, bytes] | SkippedFile:
        name = display_path(path)
        try:
            data = read_regular_file(path, max_bytes=int(self.max_file_mb * 1024 * 1024))
        except FileTooBigError:
            return SkippedFile(name, f"bigger than {self.max_file_mb:g} MB (index.max_file_mb)")
        except FileRefusedError as refused:
            return SkippedFile(name, refused.reason)
        if b"\x00" in data[:8192]:
            return SkippedFile(name, "binary file")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return SkippedFile(name, "not UTF-8 text")
        if not text.strip():
            return SkippedFile(name, "empty file")
        return text, data

    def load(self, path: Path) -> Document | SkippedFile:
        """One file as a Document, or the reason it was skipped (never an exception)."""
        read = self._read(path)
        if isinstance(read, SkippedFile):
            return read
        text, data = read
        kind = ARTICLE_SUFFIXES.get(path.suffix.lower(), "text")
        if kind == "text":
            title, body = _first_line(text), _without_first_line(text)
            documents = [Document(content=body)]
        else:
            title = _markdown_title(text) if kind == "markdown" else _html_title(text)
            stream = ByteStream(data=text.encode("utf-8"), meta={"file_path": display_path(path)})
            documents = self._converters[kind].run(sources=[stream])["documents"]
            if kind == "markdown" and documents and title:
                # The heading is the title; keep it out of the body's sentences.
                body = (documents[0].content or "").replace(title, "", 1)
                documents[0] = dataclasses.replace(documents[0], content=body)
        documents = [d for d in documents if d.content and d.content.strip()]
        if not documents:
            return SkippedFile(display_path(path), "no text found")
        cleaned = self._cleaner.run(documents=documents)["documents"][0]
        return document_for(
            cleaned.content or "",
            title=title or display_path(path.stem),
            source=display_path(path.resolve()),
            file_hash=hashlib.sha256(data).hexdigest(),
        )

    @component.output_types(documents=list[Document], skipped=list[SkippedFile])
    def run(self, sources: list[Path]) -> dict[str, list]:
        """Load `sources` (files), returning the Documents and the files skipped with reasons."""
        documents: list[Document] = []
        skipped: list[SkippedFile] = []
        for path in sources:
            loaded = self.load(Path(path))
            (skipped if isinstance(loaded, SkippedFile) else documents).append(loaded)
        return {"documents": documents, "skipped": skipped}


def document_for(content: str, *, title: str, source: str, file_hash: str | None = None) -> Document:
    """An article Document in the shape the splitter and the index expect."""
    digest = file_hash or hashlib.sha256(f"{title}\n{content}".encode()).hexdigest()
    return Document(content=content, meta={"title": title, "source": source, "file_hash": digest})
