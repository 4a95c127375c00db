"""Article files as news: each date style read into `published`, headline, date lines and datelines
kept out of the sentences, PDF and Word files through Haystack's converters, and bad input (dates in
the future, before 1900 or impossible, conflicting dates, huge front matter, scans, encrypted and
damaged PDFs, zip bombs, other types) giving a sensible date or none, or a reason to skip.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from retrieval.ingest.articles import ArticleLoader, SkippedFile, iter_article_files
from retrieval.ingest.dates import parse_date
from retrieval.ingest.splitter import SentencePassageSplitter
from tests.office_files import write_docx, write_pdf, write_scan_pdf, write_zip_bomb_docx

TITLE = "Floods force 12,000 from their homes in Emilia-Romagna"
FIRST = "Heavy rain caused rivers to burst their banks across Emilia-Romagna on Sunday."
BODY = f"{FIRST} The town of Faenza was hit hardest.\n\nRescue teams used boats to reach elderly people."
TODAY = dt.date.today()
AHEAD = (TODAY + dt.timedelta(days=30)).isoformat()


def _html(head: str = "", top: str = "") -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in BODY.split("\n\n"))
    return (
        f"<html><head><title>{TITLE} | Daily News</title>{head}</head><body><article>"
        f"<h1>{TITLE}</h1>{top}{paragraphs}</article></body></html>"
    )


JSON_LD = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": TITLE, "datePublished": "2026-05-03"}
# Each date style: the file's name, its text, the date it must give, and the dateline if it has one.
DATE_STYLES = {
    "html meta tag": (
        "a.html",
        _html('<meta property="article:published_time" content="2026-05-03T08:00:00+02:00">', "<p>3 May 2026</p>"),
        "2026-05-03",
        "",
    ),
    "html json-ld": (
        "a.html",
        _html(f'<script type="application/ld+json">{json.dumps(JSON_LD)}</script>'),
        "2026-05-03",
        "",
    ),
    "html time element": (
        "a.html",
        _html("", '<p><time datetime="2026-05-03">3 May 2026</time></p>'),
        "2026-05-03",
        "",
    ),
    "markdown front matter": (
        "a.md",
        f"---\ntitle: {TITLE}\ndate: 2026-05-03\n---\n# {TITLE}\n\n{BODY}\n",
        "2026-05-03",
        "",
    ),
    "markdown published line": (
        "a.md",
        f"# {TITLE}\n\n*Published 2026-05-03, Bologna*\n\n{BODY}\n",
        "2026-05-03",
        "Published 2026-05-03, Bologna",
    ),
    "text published line": ("a.txt", f"{TITLE}\nPublished: 3 May 2026\nBy Ana Rossi\n\n{BODY}\n", "2026-05-03", ""),
    "text date line": ("a.txt", f"{TITLE}\n\nDate: 2026-05-03\n\n{BODY}\n", "2026-05-03", ""),
    "text bare date": ("a.txt", f"{TITLE}\n\nSunday, 3 May 2026\n\n{BODY}\n", "2026-05-03", ""),
    "text dateline": (
        "a.txt",
        f"{TITLE}\n\nBOLOGNA, May 3, 2026 — {BODY}\n",
        "2026-05-03",
        "BOLOGNA, May 3, 2026",
    ),
    "text dateline with agency": ("a.txt", f"{TITLE}\n\nBOLOGNA (Reuters) — {BODY}\n", "", "BOLOGNA (Reuters)"),
}


def _sentences(document) -> list[str]:
    passages = SentencePassageSplitter().run(documents=[document])["documents"]
    return [p.content[start:end] for p in passages for start, end in p.meta["sentence_spans"]]


def _load(tmp_path: Path, name: str, text: str, **options):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return ArticleLoader(**options).load(path)


@pytest.mark.parametrize("style", sorted(DATE_STYLES))
def test_each_date_style_gives_published_and_leaves_the_sentences_clean(tmp_path, style):
    name, text, published, dateline = DATE_STYLES[style]
    document = _load(tmp_path, name, text)
    assert document.meta.get("published", "") == published
    assert document.meta.get("dateline", "") == dateline
    assert document.meta["title"] == TITLE
    sentences = _sentences(document)
    assert sentences[0] == FIRST, sentences[:2]
    for sentence in sentences:
        assert "Emilia-Romagna 3 May" not in sentence and "Published" not in sentence and "BOLOGNA" not in sentence


def test_the_byline_is_meta_too(tmp_path):
    document = _load(tmp_path, "a.txt", DATE_STYLES["text published line"][1])
    assert document.meta["byline"] == "Ana Rossi"
    assert not any("Ana Rossi" in sentence for sentence in _sentences(document))


def test_a_headline_and_date_run_into_the_text_are_taken_off(tmp_path):
    """A short page that trafilatura reads as one line: "<headline> 3 May 2026 By Ana Rossi Heavy rain..."."""
    page = (
        f'<html><head><title>{TITLE}</title><meta name="author" content="Ana Rossi"></head><body><article>'
        f"<h1>{TITLE}</h1><p>3 May 2026</p><p>By Ana Rossi</p><p>{FIRST}</p></article></body></html>"
    )
    document = _load(tmp_path, "short.html", page)
    assert _sentences(document) == [FIRST]
    assert document.meta["published"] == "2026-05-03" and document.meta["byline"] == "Ana Rossi"


def test_a_file_without_a_date_is_undated(tmp_path):
    document = _load(tmp_path, "a.txt", f"{TITLE}\n\n{BODY}\n")
    assert "published" not in document.meta and "dateline" not in document.meta
    assert _sentences(document)[0] == FIRST


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2026-02-30", ""),  # impossible
        ("31 April 2026", ""),
        ("1899-12-31", ""),  # before 1900
        ("1 January 1900", "1900-01-01"),
        (AHEAD, ""),  # more than a day ahead
        ((TODAY + dt.timedelta(days=1)).isoformat(), (TODAY + dt.timedelta(days=1)).isoformat()),  # time zones
        ("Thursday, 2 April 2026", "2026-04-02"),
        ("Mar. 14, 2026", "2026-03-14"),
        ("May 3rd, 2026", "2026-05-03"),
        ("soon", ""),
    ],
)
def test_only_real_days_from_1900_to_tomorrow_count(written, expected):
    assert parse_date(written) == expected


@pytest.mark.parametrize("bad", ["2026-02-30", "1850-06-01", AHEAD])
@pytest.mark.parametrize("where", ["text", "front matter", "html meta"])
def test_a_bad_date_leaves_the_article_undated_and_its_line_out_of_the_text(tmp_path, bad, where):
    name, text = {
        "text": ("a.txt", f"{TITLE}\nDate: {bad}\n\n{BODY}\n"),
        "front matter": ("a.md", f"---\ndate: {bad}\n---\n# {TITLE}\n\n{BODY}\n"),
        # htmldate would read 2026-02-30 as 2026-02-01: a date field that is there but wrong gives no date
        "html meta": ("a.html", _html(f'<meta property="article:published_time" content="{bad}">')),
    }[where]
    document = _load(tmp_path, name, text)
    assert "published" not in document.meta
    assert _sentences(document)[0] == FIRST


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("a.html", _html('<meta property="article:published_time" content="2026-05-03">', "<p>Date: 1 May 2026</p>")),
        ("a.md", f"---\ndate: 2026-05-03\n---\n# {TITLE}\n\nPublished: 1 May 2026\n\n{BODY}\n"),
    ],
)
def test_when_the_metadata_and_the_text_disagree_the_metadata_wins(tmp_path, name, text):
    document = _load(tmp_path, name, text)
    assert document.meta["published"] == "2026-05-03"
    assert _sentences(document)[0] == FIRST


def test_a_5_mb_front_matter_block_is_dropped_unread_and_the_text_still_read(tmp_path):
    block = "---\n" + "tags: [news, floods, rain]\n" * 200_000 + "date: 2026-05-03\n---\n"
    started = time.perf_counter()
    document = _load(tmp_path, "big.md", f"{block}# {TITLE}\n\nPublished: 4 May 2026\n\n{BODY}\n")
    assert time.perf_counter() - started < 10
    assert document.meta["published"] == "2026-05-04"  # from the text: the block is not read
    assert _sentences(document)[0] == FIRST


def test_a_5_mb_unclosed_front_matter_or_first_line_is_no_crash(tmp_path):
    unclosed = _load(tmp_path, "unclosed.md", "---\ndate: 2026-05-03\n" + "x: y\n" * 1_000_000)
    assert unclosed.meta.get("published", "2026-05-03") == "2026-05-03"  # no front matter: a date line or none
    one_line = _load(tmp_path, "line.txt", f"{TITLE}\n\nLISBON, {'word ' * 1_000_000}")
    assert "published" not in one_line.meta


def test_pdf_and_word_files_are_read_with_title_date_and_dateline(tmp_path):
    pdf = write_pdf(
        tmp_path / "a.pdf", [TITLE, "Published: 3 May 2026", "", FIRST, "The town of Faenza was hit hardest."]
    )
    word = write_docx(tmp_path / "a.docx", [TITLE, f"BOLOGNA, May 3, 2026 — {FIRST}", "Rescue teams used boats."])
    for document in ArticleLoader().run(sources=[pdf, word])["documents"]:
        assert document.meta["title"] == TITLE and document.meta["published"] == "2026-05-03"
        assert _sentences(document)[0] == FIRST
    assert document.meta["dateline"] == "BOLOGNA, May 3, 2026"


def test_pdf_and_word_files_without_text_are_skipped_with_the_reason(tmp_path):
    scan = write_scan_pdf(tmp_path / "scan.pdf")
    locked = write_pdf(tmp_path / "locked.pdf", [TITLE, FIRST], password="secret")
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(write_pdf(tmp_path / "whole.pdf", [TITLE, FIRST]).read_bytes()[:300])
    fake = tmp_path / "fake.pdf"
    fake.write_text("not a pdf at all")
    not_zip = tmp_path / "notes.docx"
    not_zip.write_text("plain text named .docx")
    bomb = write_zip_bomb_docx(tmp_path / "bomb.docx", megabytes=12)
    loader = ArticleLoader(max_file_mb=2)  # a .docx may unpack to 5 times that: 10 MB
    reasons = {
        Path(s.path).name: s.reason for s in loader.run(sources=[scan, locked, cut, fake, not_zip, bomb])["skipped"]
    }
    assert reasons["scan.pdf"].startswith("no text")
    assert reasons["locked.pdf"] == "encrypted PDF: needs a password"
    assert reasons["cut.pdf"].startswith("damaged PDF")
    assert reasons["fake.pdf"] == "damaged PDF: no PDF header"
    assert reasons["notes.docx"].startswith("damaged Word file")
    assert reasons["bomb.docx"].startswith("unpacks to 1") and reasons["bomb.docx"].endswith(
        "more than 10 MB: a zip bomb?"
    )


def test_a_pdf_with_only_an_owner_password_is_read(tmp_path):
    from pypdf import PdfReader, PdfWriter

    plain = write_pdf(tmp_path / "plain.pdf", [TITLE, FIRST])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    protected = tmp_path / "protected.pdf"
    with protected.open("wb") as handle:
        writer.write(handle)
    assert ArticleLoader().load(protected).meta["title"] == TITLE


def test_other_types_are_named_as_skipped_and_hidden_files_are_not_read(tmp_path):
    (tmp_path / "a.txt").write_text(f"{TITLE}\n\n{BODY}\n")
    (tmp_path / "notes.xyz").write_text("notes")
    (tmp_path / "README").write_text("Read me\n\nThis folder holds articles.")
    (tmp_path / ".hidden.txt").write_text("hidden")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD.txt").write_text("ref")
    files = list(iter_article_files([tmp_path]))
    assert sorted(path.name for path in files) == ["README", "a.txt", "notes.xyz"]
    loader = ArticleLoader()
    assert loader.load(tmp_path / "notes.xyz", named=False) == SkippedFile(
        str(tmp_path / "notes.xyz"), "unsupported type"
    )
    assert loader.load(tmp_path / "README", named=False).reason == "unsupported type"
    assert loader.load(tmp_path / "README").meta["title"] == "Read me"  # named itself: read as text
