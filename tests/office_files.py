"""Real PDF and Word files for the tests, written with pypdf and python-docx.

`write_pdf` writes a page of text lines in Helvetica (a real text layer that pypdf extracts);
`write_scan_pdf` a page holding only an image, as a scanner makes it; `write_docx` a Word file of
paragraphs; `write_zip_bomb_docx` a .docx whose document unpacks to `megabytes` MB of spaces.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject, StreamObject


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _page_with(writer: PdfWriter, content: bytes, resources: DictionaryObject) -> None:
    page = writer.add_blank_page(width=612, height=792)
    page[NameObject("/Resources")] = resources
    stream = DecodedStreamObject()
    stream.set_data(content)
    page[NameObject("/Contents")] = writer._add_object(stream)


def write_pdf(path: Path, lines: list[str], password: str | None = None) -> Path:
    """A one-page PDF with `lines` of text (latin-1), encrypted with `password` if given."""
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        }
    )
    resources = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})})
    shown = " ".join(f"({_escape(line)}) Tj T*" for line in lines)
    _page_with(writer, f"BT /F1 11 Tf 14 TL 72 740 Td {shown} ET".encode("latin-1"), resources)
    if password is not None:
        writer.encrypt(user_password=password, owner_password="owner-" + password, algorithm="AES-256")
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def write_scan_pdf(path: Path) -> Path:
    """A one-page PDF whose page is a grey 8x8 image and nothing else: no text layer."""
    writer = PdfWriter()
    image = StreamObject()
    image._data = zlib.compress(bytes([128]) * 64)
    image.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(8),
            NameObject("/Height"): NumberObject(8),
            NameObject("/ColorSpace"): NameObject("/DeviceGray"),
            NameObject("/BitsPerComponent"): NumberObject(8),
            NameObject("/Filter"): NameObject("/FlateDecode"),
        }
    )
    resources = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im1"): writer._add_object(image)})}
    )
    _page_with(writer, b"q 468 0 0 648 72 72 cm /Im1 Do Q", resources)
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def write_docx(path: Path, paragraphs: list[str]) -> Path:
    """A Word file with `paragraphs`, the first as a heading."""
    import docx

    document = docx.Document()
    document.add_heading(paragraphs[0], level=1)
    for paragraph in paragraphs[1:]:
        document.add_paragraph(paragraph)
    document.save(str(path))
    return path


def write_zip_bomb_docx(path: Path, megabytes: int) -> Path:
    """A .docx (a real one's parts) whose word/document.xml unpacks to `megabytes` MB."""
    real = write_docx(path.with_name("real-" + path.name), ["Title", "Text."])
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for part in source.infolist():
            if part.filename != "word/document.xml":
                bomb.writestr(part, source.read(part))
        with bomb.open("word/document.xml", "w", force_zip64=True) as document:
            chunk = b" " * (1 << 20)
            for _ in range(megabytes):
                document.write(chunk)
    real.unlink()
    return path
