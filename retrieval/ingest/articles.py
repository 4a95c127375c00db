"""Reading article files into Haystack Documents: .txt, .md, .html, .pdf and .docx, with a title each.

What a file says about itself becomes the Document's meta, not part of its text: the title (the
first line of a text, PDF or Word file, a Markdown file's heading or front matter, an HTML page's
title), the date as `published` (YYYY-MM-DD, from HTML date fields, Markdown front matter, or a date
line or dateline at the top of the text: `retrieval/ingest/metadata.py` and `dates.py`), and the
`dateline` and `byline` when there are any. When the file's metadata and a date in its text disagree,
the metadata wins (see `metadata.py`). A file without a date is undated.

Files that are binary, not UTF-8, empty, too big, not regular files (devices, FIFOs, sockets), of
another type, or PDF and Word files without text (scanned, encrypted, damaged, zip bombs) are
skipped with a reason, never fatal. Hidden files and folders (.git) inside a folder are not read.
File names that are not UTF-8 are kept with their odd bytes written as \\xNN escapes, so that they
can be stored and printed.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from haystack import Document, component
from haystack.components.converters import HTMLToDocument, MarkdownToDocument
from haystack.components.preprocessors import DocumentCleaner
from haystack.dataclasses import ByteStream

from retrieval.errors import InputError
from retrieval.files import FileRefusedError, FileTooBigError, display_path, read_regular_file
from retrieval.ingest.dates import split_head
from retrieval.ingest.metadata import FileMeta, front_matter, html_meta
from retrieval.ingest.office import UnreadableFileError, docx_text, pdf_text

ARTICLE_SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown"}
ARTICLE_SUFFIXES |= {".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx"}
# A .docx may unpack to this many times index.max_file_mb; more is refused as a zip bomb.
UNPACK_FACTOR = 5
# Part of every file's hash: a file read before dates and datelines were taken out is read again.
_READING = b"qabot-article-reading-2\x00"

_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


def _folder_files(folder: Path) -> list[Path]:
    """Every file in `folder` and its subfolders, hidden ones left out, and links to folders named like articles."""
    found: list[Path] = []
    for root, folders, files in os.walk(folder):
        base = Path(root)
        folders[:] = [name for name in folders if not name.startswith(".")]
        # A link to a folder is not walked; named like an article, the loader says why it is not read.
        found += [base / n for n in folders if (base / n).is_symlink() and Path(n).suffix.lower() in ARTICLE_SUFFIXES]
        found += [base / name for name in files if not name.startswith(".")]
    return sorted(found)


def iter_article_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Every file under `paths`, in a stable order; a missing path is an input error.

    Inside a folder, every file is listed, devices, FIFOs and other types included, so that the
    loader can say why it skips them.
    """
    for path in paths:
        if not path.exists():
            raise InputError(f"no such file or folder: {display_path(path)}", exit_code=2)
        if path.is_dir():
            yield from _folder_files(path)
        else:
            yield path


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _markdown_heading(text: str) -> str:
    """The heading on the first line that has text, if it is one."""
    match = _MD_HEADING.match(_first_line(text))
    return match.group(1).strip() if match else ""


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
    """Turns article files into one cleaned Document each, with `title`, `source` and `file_hash` meta,
    and `published`, `dateline` and `byline` when the file has them."""

    def __init__(self, max_file_mb: float = 20.0) -> None:
        self.max_file_mb = max_file_mb
        self._markdown = MarkdownToDocument(progress_bar=False)
        self._html = HTMLToDocument()
        # Keep line structure: paragraphs matter to the sentence splitter.
        self._cleaner = DocumentCleaner(
            remove_empty_lines=False, remove_extra_whitespaces=False, unicode_normalization="NFKC"
        )

    def _read(self, path: Path) -> bytes | SkippedFile:
        try:
            return read_regular_file(path, max_bytes=int(self.max_file_mb * 1024 * 1024))
        except FileTooBigError:
            return SkippedFile(display_path(path), f"bigger than {self.max_file_mb:g} MB (index.max_file_mb)")
        except FileRefusedError as refused:
            return SkippedFile(display_path(path), refused.reason)

    @staticmethod
    def _decode(data: bytes) -> str:
        """The text of a text file; UnreadableFileError when it is binary, not UTF-8 or empty."""
        if b"\x00" in data[:8192]:
            raise UnreadableFileError("binary file")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UnreadableFileError("not UTF-8 text") from None
        if not text.strip():
            raise UnreadableFileError("empty file")
        return text

    def _converted(self, converter: HTMLToDocument | MarkdownToDocument, text: str, path: Path) -> str:
        stream = ByteStream(data=text.encode("utf-8"), meta={"file_path": display_path(path)})
        documents = converter.run(sources=[stream])["documents"]
        return (documents[0].content or "") if documents else ""

    def _text_and_meta(self, kind: str, data: bytes, path: Path) -> tuple[str, FileMeta, str]:
        """The file's text with its head lines still on top, its own metadata, and its known headline."""
        if kind == "pdf":
            return pdf_text(data), FileMeta(), ""
        if kind == "docx":
            return docx_text(data, int(self.max_file_mb * UNPACK_FACTOR * 2**20)), FileMeta(), ""
        text = self._decode(data)
        if kind == "markdown":
            meta, source = front_matter(text)
            heading = _markdown_heading(source)
            meta.title = meta.title or _markdown_title(source)
            return self._converted(self._markdown, source, path), meta, heading or meta.title
        if kind == "html":
            meta = html_meta(text)
            meta.title = meta.title or _html_title(text)
            return self._converted(self._html, text, path), meta, meta.title
        return text, FileMeta(), ""

    def load(self, path: Path, named: bool = True) -> Document | SkippedFile:
        """One file as a Document, or the reason it was skipped (never an exception).

        A file without a suffix is read as text when it was `named` (not found in a folder).
        """
        kind = ARTICLE_SUFFIXES.get(path.suffix.lower()) or ("text" if named and not path.suffix else None)
        if kind is None:
            return SkippedFile(display_path(path), "unsupported type")
        data = self._read(path)
        if isinstance(data, SkippedFile):
            return data
        try:
            text, meta, headline = self._text_and_meta(kind, data, path)
        except UnreadableFileError as unreadable:
            return SkippedFile(display_path(path), unreadable.reason)
        # Text, PDF and Word files have no title apart from their text: it is their first line.
        head, body = split_head(text, headline, title_line=kind in {"text", "pdf", "docx"}, byline=meta.author)
        if not body.strip():
            return SkippedFile(display_path(path), "no text found")
        cleaned = self._cleaner.run(documents=[Document(content=body)])["documents"][0]
        document = document_for(
            cleaned.content or "",
            title=meta.title or head.title or display_path(path.stem),
            source=display_path(path.resolve()),
            file_hash=hashlib.sha256(_READING + data).hexdigest(),
        )
        found = {"published": meta.published or head.published, "byline": meta.author or head.byline}
        document.meta.update({key: value for key, value in {**found, "dateline": head.dateline}.items() if value})
        return document

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
