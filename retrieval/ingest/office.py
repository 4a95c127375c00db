"""PDF and Word (.docx) files as text, through Haystack's `PyPDFToDocument` and `DOCXToDocument`.

A file that cannot give text is refused with the reason, before or instead of converting it:
a damaged PDF, an encrypted one that needs a password, a scanned one without a text layer (qabot
reads no images), a .docx that is not a zip archive or holds no document, and a .docx whose parts
would unpack to more than `max_unpacked` bytes, by the sizes its zip directory declares (a zip
bomb: Python's zip reader never unpacks more than an entry declares, so the check holds).
"""

from __future__ import annotations

import contextlib
import io
import logging
import zipfile
from collections.abc import Iterator

from haystack.components.converters import DOCXToDocument, PyPDFToDocument
from haystack.dataclasses import ByteStream
from pypdf import PasswordType, PdfReader

MAX_DOCX_PARTS = 10_000


class UnreadableFileError(Exception):
    """A PDF or Word file that gives no text, and why (`reason`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """The converters log a warning for each file they cannot read; the loader says why once, itself."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:120]


def pdf_text(data: bytes) -> str:
    """The text of a PDF file, pages apart by form feeds; UnreadableFileError when it has none."""
    if not data.lstrip()[:5] == b"%PDF-":
        raise UnreadableFileError("damaged PDF: no PDF header")
    with _quiet("haystack.components.converters.pypdf", "pypdf"):
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                raise UnreadableFileError("encrypted PDF: needs a password")
            pages = len(reader.pages)
        except UnreadableFileError:
            raise
        except Exception as error:  # noqa: BLE001 - pypdf's many errors on damaged files
            raise UnreadableFileError(f"damaged PDF: {_first_line(error)}") from None
        documents = PyPDFToDocument().run(sources=[ByteStream(data=data)])["documents"]
    if not documents:
        raise UnreadableFileError("damaged PDF: its pages cannot be read")
    text = documents[0].content or ""
    if not text.replace("\f", "").strip():
        raise UnreadableFileError(f"no text: {'a scan' if pages else 'no pages'} without a text layer, needs OCR")
    return text


def _check_zip(data: bytes, max_unpacked: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
        raise UnreadableFileError(f"damaged Word file: {_first_line(error)}") from None
    if len(parts) > MAX_DOCX_PARTS:
        raise UnreadableFileError(f"not a Word file: a zip archive of {len(parts)} parts")
    unpacked = sum(part.file_size for part in parts)
    if unpacked > max_unpacked:
        raise UnreadableFileError(
            f"unpacks to {unpacked / 2**20:.0f} MB, more than {max_unpacked / 2**20:g} MB: a zip bomb?"
        )
    if "word/document.xml" not in {part.filename for part in parts}:
        raise UnreadableFileError("not a Word file: no word/document.xml")


def docx_text(data: bytes, max_unpacked: int) -> str:
    """The text of a Word file, a paragraph a line apart; UnreadableFileError when it has none."""
    _check_zip(data, max_unpacked)
    with _quiet("haystack.components.converters.docx"):
        documents = DOCXToDocument().run(sources=[ByteStream(data=data)])["documents"]
    if not documents:
        raise UnreadableFileError("damaged Word file: its document cannot be read")
    # Each line is a paragraph of the document: keep them apart for the sentence splitter.
    return "\n\n".join(line for line in (documents[0].content or "").split("\n") if line.strip())
