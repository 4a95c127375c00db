"""Relative days in answers ("on Tuesday", "yesterday", "last week") as the dates they mean.

An article dated 2026-04-23 that says "on Tuesday" means Tuesday 21 April 2026: the most recent
Tuesday on or before the article's date. Display only: the answer's span stays as written; every
front end shows `with_date_meant(answer.text, answer.published)`, and `qabot ask --json` adds the
day from `date_meant`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PART_OF_DAY = r"(?:\s+(?:morning|afternoon|evening|night))?"
_WEEKDAY = re.compile(
    rf"(?:on\s+)?(?:(?P<which>last|this|next|past)\s+)?(?P<day>{'|'.join(WEEKDAYS)}){_PART_OF_DAY}", re.IGNORECASE
)
# Words for a day counted from the article's date.
_DAYS_BACK = {
    "today": 0,
    "this morning": 0,
    "this afternoon": 0,
    "this evening": 0,
    "tonight": 0,
    "earlier today": 0,
    "yesterday": 1,
    "yesterday morning": 1,
    "yesterday afternoon": 1,
    "yesterday evening": 1,
    "last night": 1,
    "the day before yesterday": 2,
    "tomorrow": -1,
}


@dataclass(frozen=True)
class DateMeant:
    """What a relative span means: a day (`day`), or a longer period with only a `label`."""

    label: str
    day: dt.date | None = None


def _long(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def resolve(text: str, published: str) -> DateMeant | None:
    """The date a relative answer means, counted from the article's date (YYYY-MM-DD); None when the
    answer is not a relative day, or the article has no date."""
    try:
        dated = dt.date.fromisoformat(published[:10])
    except ValueError:
        return None
    words = " ".join(text.strip().strip(".,;:!?\"'“”").split()).lower()
    if words in _DAYS_BACK:
        day = dated - dt.timedelta(days=_DAYS_BACK[words])
        return DateMeant(_long(day), day)
    match = _WEEKDAY.fullmatch(words)
    if match:
        back = (dated.weekday() - WEEKDAYS.index(match["day"].lower())) % 7
        if match["which"] == "next":
            back = back - 7 if back else -7
        elif match["which"] in ("last", "past") and not back:
            back = 7  # "last Tuesday" in an article of a Tuesday is the week before
        day = dated - dt.timedelta(days=back)
        return DateMeant(_long(day), day)
    if words in ("last week", "the past week", "the previous week"):
        monday = dated - dt.timedelta(days=dated.weekday() + 7)
        return DateMeant(f"week of {_long(monday)}")
    if words in ("this week", "earlier this week"):
        return DateMeant(f"week of {_long(dated - dt.timedelta(days=dated.weekday()))}")
    if words in ("last month", "the previous month"):
        return DateMeant(f"{(dated.replace(day=1) - dt.timedelta(days=1)):%B %Y}")
    if words in ("this month", "earlier this month"):
        return DateMeant(f"{dated:%B %Y}")
    return None


def with_date_meant(text: str, published: str) -> str:
    """The answer as shown: "Tuesday (21 April 2026)" for a relative day, else `text` unchanged."""
    meant = resolve(text, published)
    return f"{text} ({meant.label})" if meant else text


def date_meant(text: str, published: str) -> str:
    """The day a relative answer means as YYYY-MM-DD, or "" (not a single day, or no article date)."""
    meant = resolve(text, published)
    return meant.day.isoformat() if meant and meant.day else ""
