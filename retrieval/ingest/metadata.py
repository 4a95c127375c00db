"""An article file's own metadata: Markdown front matter, and the date, title and author of an HTML page.

The date is read from the fields publishers write for it: in HTML the `article:published_time`
meta tag (and its kin: `datePublished`, `pubdate`, `DC.date`...), a JSON-LD `datePublished`, a
`<time datetime>`, in that order, the first that holds a real day counting (see `dates.checked_date`);
only a page with none of these fields is searched further by `htmldate`, through trafilatura's
metadata extraction, which also gives the title and the author. (`htmldate` reads a day it cannot
read as the first of its month, "2026-02-30" as 2026-02-01: a field that is there but wrong leaves
the page undated instead.) In Markdown, the front matter's `date` (or `published`).

When these fields and a date line or dateline in the text disagree, the fields win: they are
written by the publishing system, for machines, as the article's publication date, while a date in
the text may be a dateline of the day the story was filed (often the evening before), a date the
story quotes, or that of an update or correction.

Bounded: front matter is read only when it closes within FRONT_MATTER_CHARS characters (a longer
block is dropped unread), and JSON-LD blocks over JSON_LD_CHARS are not parsed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from lxml import html as lxml_html
from trafilatura.metadata import extract_metadata

from retrieval.ingest.dates import EARLIEST, checked_date, parse_date

FRONT_MATTER_CHARS = 8192
JSON_LD_CHARS = 100_000
_FRONT_MATTER_OPEN = re.compile(r"\A\ufeff?---[ \t]*\r?\n")
_FRONT_MATTER_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?$", re.MULTILINE)
_DATE_KEYS = ("date", "published", "pubdate", "date_published", "datepublished", "published_at")
_AUTHOR_KEYS = ("author", "authors", "byline")
# Meta tags (property, name or itemprop) that hold the publication date.
_META_DATES = {
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "date",
    "dc.date",
    "dc.date.issued",
    "dcterms.date",
    "dcterms.issued",
    "parsely-pub-date",
    "sailthru.date",
}


@dataclass
class FileMeta:
    """What a file says about itself: title, date (YYYY-MM-DD or "") and author, each "" when it does not."""

    title: str = ""
    published: str = ""
    author: str = ""


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value[:10] if _text(item))
    if isinstance(value, dict):
        return _text(value.get("name", ""))
    return " ".join(str(value).split())[:200] if isinstance(value, str | int | float) else ""


def _date_value(value: Any, today: dt.date | None) -> str:
    if isinstance(value, dt.date):  # YAML reads 2026-04-22 as a date, and a timestamp as a datetime
        return checked_date(value, today)
    return parse_date(value, today) if isinstance(value, str) else ""


def front_matter(text: str, today: dt.date | None = None) -> tuple[FileMeta, str]:
    """A Markdown file's YAML front matter (title, date, author) and the text after it.

    Front matter that is not YAML, or not a mapping, gives nothing but is still taken off the text;
    a block longer than FRONT_MATTER_CHARS is taken off unread. Without a closing `---` the text
    has no front matter.
    """
    opening = _FRONT_MATTER_OPEN.match(text)
    if not opening:
        return FileMeta(), text
    closing = _FRONT_MATTER_CLOSE.search(text, opening.end())
    if closing is None:
        return FileMeta(), text
    rest = text[closing.end() :].lstrip("\r\n")
    if closing.end() > FRONT_MATTER_CHARS:
        return FileMeta(), rest
    try:
        data = yaml.safe_load(text[opening.end() : closing.start()])
    except Exception:  # noqa: BLE001 - YAML errors, an impossible date (2026-02-30), deep nesting: no metadata
        return FileMeta(), rest
    if not isinstance(data, dict):
        return FileMeta(), rest
    fields = {str(key).lower(): value for key, value in data.items()}
    published = next(
        (date for key in _DATE_KEYS if (date := _date_value(fields.get(key), today))),
        "",
    )
    author = next((name for key in _AUTHOR_KEYS if (name := _text(fields.get(key)))), "")
    return FileMeta(title=_text(fields.get("title", "")), published=published, author=author), rest


def _walk(data: Any, key: str, depth: int = 0) -> Iterator[Any]:
    """Every value of `key` in nested JSON, at most 6 levels down."""
    if depth > 6:
        return
    if isinstance(data, dict):
        if key in data:
            yield data[key]
        for value in data.values():
            yield from _walk(value, key, depth + 1)
    elif isinstance(data, list):
        for item in data[:100]:
            yield from _walk(item, key, depth + 1)


def _date_fields(tree: Any) -> Iterator[str]:
    """The values of the page's date fields, in the order they are trusted."""
    for meta in tree.iterfind(".//meta"):
        name = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        if name in _META_DATES and meta.get("content"):
            yield meta.get("content")
    for script in tree.xpath('.//script[@type="application/ld+json"]')[:20]:
        raw = script.text or ""
        if len(raw) > JSON_LD_CHARS:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        yield from (value for value in _walk(data, "datePublished") if isinstance(value, str))
    for time in tree.xpath(".//time[@datetime]")[:5]:
        yield time.get("datetime")


def html_meta(text: str, today: dt.date | None = None) -> FileMeta:
    """An HTML file's title, date and author (see the module's docstring)."""
    try:
        tree = lxml_html.document_fromstring(text)
    except Exception:  # noqa: BLE001 - lxml's errors on odd pages: no metadata from the fields
        tree = None
    fields = list(_date_fields(tree)) if tree is not None else []
    published = next((date for value in fields if (date := parse_date(value, today))), "")
    latest = (today or dt.date.today()) + dt.timedelta(days=1)
    date_config = {
        "original_date": True,
        "extensive_search": False,
        "min_date": EARLIEST.isoformat(),
        "max_date": latest.isoformat(),
    }
    try:
        found = extract_metadata(text, date_config=date_config)
    except Exception:  # noqa: BLE001 - trafilatura's errors on odd pages: no metadata from it
        return FileMeta(published=published)
    if not fields and found.date:
        published = parse_date(found.date, today)
    return FileMeta(title=_text(found.title or ""), published=published, author=_text(found.author or ""))
