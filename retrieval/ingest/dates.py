"""An article's date and the lines above its text: headline, date line, dateline and byline.

News text opens with lines that are not sentences of the story: the headline, a "Published:" or
"Date:" line, a line that is only a date ("3 May 2026"), a byline ("By Ana Rossi"), and a dateline
that opens the first paragraph ("LISBON, March 14, 2026 — The city council..."). `split_head` takes
them off the text, so that no evidence sentence starts with a headline or a date, and returns what
they say: the date as `published` (YYYY-MM-DD, as web articles have it), the dateline and the byline.

Bounded: only the first HEAD_CHARS characters and HEAD_LINES non-blank lines are looked at, and
the first line that is none of these ends the head.

A date counts only if it is a real day (not 2026-02-30), not before 1900 and at most a day ahead of
today (a day for time zones); otherwise the article is undated, like a file without a date. Dates
are written the ISO way (2026-04-22) or with English month names (14 March 2026, March 14, 2026,
Thursday, 2 April 2026); the month names are read by `dateparser`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import dateparser

HEAD_CHARS = 4096
HEAD_LINES = 8
EARLIEST = dt.date(1900, 1, 1)
_DATEPARSER_SETTINGS = {"STRICT_PARSING": True, "REQUIRE_PARTS": ["day", "month", "year"], "DATE_ORDER": "DMY"}

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAY = r"(?:(?:mon|tue(?:s)?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+)"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_ISO_DAY = r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?"
# A date as news text writes it (case-insensitive inside, so that the rest can ask for capitals).
DATE = rf"(?i:{_WEEKDAY}?(?:{_ISO_DAY}|{_DAY}\s+{_MONTH},?\s+\d{{4}}|{_MONTH}\s+{_DAY},?\s+\d{{4}}))"
_TIME = r"(?i:,?\s*(?:at\s+)?\d{1,2}[:.]\d{2}(?:\s*[ap]\.?m\.?)?(?:\s+[A-Z]{2,5})?)"
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")

_DATE_FIRST = re.compile(rf"(?P<date>{DATE}){_TIME}?")
_LABEL_WORDS = r"(?i:(?:first\s+)?published|dated|date|posted)(?:\s+on)?"
_LABEL = re.compile(rf"{_LABEL_WORDS}\s*(?P<colon>[:\-–—])?\s*(?P<rest>.*)")
_UPDATED = re.compile(rf"(?i:(?:last\s+)?(?:updated|modified))(?:\s+on)?\s*[:\-–—]?\s*{DATE}{_TIME}?")
_NAME = r"(?:[A-Z][\w.'’\-]*|(?:de|da|del|della|van|von|der|den|la|le|bin|al|dos|du|ter)\b)"
_BYLINE = re.compile(
    rf"(?i:by|written\s+by|words\s+by|author:?)\s+(?P<name>[A-Z][\w.'’\-]*(?:,?\s+(?:(?:and|&)\s+)?{_NAME}){{0,7}})"
)
_PLACE = re.compile(r"[A-Z][\w.'’\-]*(?:,?\s+[A-Z][\w.'’\-]*){0,3}")
_PLACE_DATE = re.compile(rf"(?P<place>{_PLACE.pattern}),\s+(?P<date>{DATE}){_TIME}?")
# "LISBON, March 14, 2026 — ", "SPRINGFIELD, Ill., March 3, 2026 -- ", "NAIROBI (Reuters) — "
_DATELINE = re.compile(
    rf"(?P<dateline>(?P<place>[A-Z][\w.'’\-]*(?:\s+[A-Z][\w.'’\-]*){{0,3}})(?:,\s+[A-Z][a-z]{{1,4}}\.)?"
    rf"(?:,\s+(?P<date>{DATE}))?(?:\s*\((?P<agency>[A-Z][\w .&\-]{{1,30}})\))?)"
    r"(?:\s*[—–]\s*|\s+--?\s+)(?=\S)"
)
_SEGMENTS = re.compile(r"\s+[|·•]\s+")
_MARKUP = " \t*_#>`~"


def checked_date(value: object, today: dt.date | None = None) -> str:
    """`value` (a date or datetime) as YYYY-MM-DD, or "" when it is none, before 1900 or more than a day ahead."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        return ""
    latest = (today or dt.date.today()) + dt.timedelta(days=1)
    return value.isoformat() if EARLIEST <= value <= latest else ""


def parse_date(text: str, today: dt.date | None = None) -> str:
    """The date written at the start of `text` ("2026-04-22", "14 March 2026", ...), checked; "" for none.

    An impossible day ("2026-02-30", "31 April 2026") is no date: neither read as another day nor guessed.
    """
    text = text.strip()[:80]
    iso = _ISO.match(text)
    if iso:
        try:
            return checked_date(dt.date(*(int(part) for part in iso.groups())), today)
        except ValueError:
            return ""
    try:
        parsed = dateparser.parse(text, languages=["en"], settings=_DATEPARSER_SETTINGS)
    except Exception:  # noqa: BLE001 - dateparser's own errors on odd input: no date
        return ""
    return checked_date(parsed, today)


@dataclass
class Head:
    """What an article's first lines say: its headline, date (YYYY-MM-DD or ""), dateline and byline."""

    title: str = ""
    published: str = ""
    dateline: str = ""
    byline: str = ""
    dated: bool = False  # a date line was seen, even one whose date did not count

    def add(self, other: Head) -> None:
        """Fill what is still missing from `other`: the first date that counts, dateline and byline seen win."""
        self.published = self.published or other.published
        self.dated = self.dated or other.dated
        self.dateline = self.dateline or other.dateline
        self.byline = self.byline or other.byline


def _plain(line: str) -> str:
    return line.strip().strip(_MARKUP).strip()


def _same(line: str, title: str) -> bool:
    def words(text: str) -> str:
        return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())

    return bool(title) and words(line) == words(title)


def _labelled(segment: str, today: dt.date | None) -> Head | None:
    """ "Published: 3 May 2026", "Date: 2026-04-22", "Published 2026-04-22, Toronto", "Posted on ... by X"."""
    label = _LABEL.fullmatch(segment)
    if not label:
        return None
    rest = label["rest"].strip()
    found = _DATE_FIRST.match(rest)
    if found is None:
        # "Date: <something>": a date line even when its date cannot be read; nothing else is.
        if label["colon"] and 0 < len(rest) <= 60:
            return Head(published=parse_date(rest, today), dated=True)
        return None
    head = Head(published=parse_date(found["date"], today), dated=True)
    after = rest[found.end() :].strip(" ,;·|–—-")
    if not after:
        return head
    byline = _BYLINE.fullmatch(after)
    if byline:
        head.byline = byline["name"].strip()
    elif _PLACE.fullmatch(after):
        head.dateline = segment
    else:
        return None
    return head


def _segment(segment: str, today: dt.date | None) -> Head | None:
    """What one part of a head line says, or None when it is not a head line's part."""
    segment = segment.strip(" ,;")
    labelled = _labelled(segment, today)
    if labelled is not None:
        return labelled
    if _UPDATED.fullmatch(segment):
        return Head()  # when it was changed, not when it was published
    byline = _BYLINE.fullmatch(segment)
    if byline and len(segment) <= 100:
        return Head(byline=byline["name"].strip())
    only_date = _DATE_FIRST.fullmatch(segment)
    if only_date:
        return Head(published=parse_date(only_date["date"], today), dated=True)
    place_date = _PLACE_DATE.fullmatch(segment)
    if place_date:
        return Head(published=parse_date(place_date["date"], today), dated=True, dateline=segment)
    return None


def read_head_line(line: str, today: dt.date | None = None) -> Head | None:
    """What a line of an article's head says (a date line, a byline, both), or None for any other line."""
    line = _plain(line)
    if not line or len(line) > 200:
        return None
    head = Head()
    for segment in _SEGMENTS.split(line):
        found = _segment(segment, today)
        if found is None:
            return None
        head.add(found)
    return head


def _dateline(line: str, today: dt.date | None) -> tuple[Head, str] | None:
    """The dateline opening a paragraph ("LISBON, March 14, 2026 — ") and the paragraph after it."""
    found = _DATELINE.match(line[:300])
    if not found or not (found["date"] or found["agency"]):
        return None
    head = Head(dateline=found["dateline"].strip())
    if found["date"]:
        head.published, head.dated = parse_date(found["date"], today), True
    return head, line[found.end() :]


def _merged(line: str, title: str, byline: str, today: dt.date | None) -> tuple[Head, str]:
    """A first line where the headline, the date and the byline run into the text (HTML read without its
    paragraphs): the date and a byline already known are taken off the front too."""
    head = Head()
    rest = line[len(title) :].lstrip(" :|·–—-")
    found = re.match(rf"(?:{_LABEL_WORDS}\s*[:\-–—]?\s*)?(?P<date>{DATE}){_TIME}?\s+", rest)
    if found:
        head.published, head.dated = parse_date(found["date"], today), True
        rest = rest[found.end() :]
    if byline:
        named = re.match(rf"(?i:by)\s+{re.escape(byline)}\s+", rest)
        if named:
            head.byline, rest = byline, rest[named.end() :]
    return head, rest


def split_head(
    text: str, title: str = "", *, title_line: bool = False, byline: str = "", today: dt.date | None = None
) -> tuple[Head, str]:
    """The article's head (see the module's docstring) and its text without it.

    `title` is the headline when known (a line repeating it is dropped); with `title_line` the first
    line that is not a date line or byline is the headline (text files: the title is the first line).
    `byline` is an author already known, taken off the front of a line where the head runs into the text.
    """
    lines = text.split("\n")
    head = Head(title=title)
    seen = used = 0
    index = 0
    while index < len(lines) and seen < HEAD_LINES and used < HEAD_CHARS:
        raw = lines[index]
        used += len(raw) + 1
        line = _plain(raw)
        if not line:
            index += 1
            continue
        seen += 1
        found = read_head_line(line, today)
        if found is not None:
            head.add(found)
        elif head.title and _same(line, head.title):
            pass  # the headline again
        elif title_line and not head.title:
            head.title = line
        elif head.title and len(line) > len(head.title) and _same(line[: len(head.title)], head.title):
            found, lines[index] = _merged(line, head.title, byline, today)
            head.add(found)
            break
        else:
            break
        index += 1
    body = lines[index:]
    if body:
        opened = _dateline(body[0].lstrip(_MARKUP), today)
        if opened is not None:
            head.add(opened[0])
            body[0] = opened[1]
    return head, "\n".join(body)
