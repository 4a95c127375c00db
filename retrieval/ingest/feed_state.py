"""What qabot keeps about its feeds, in `<data.dir>/feeds.json`: the feeds added with `qabot feeds add`,
each feed's ETag and Last-Modified, the entries already indexed, and the entries that failed.

A failed entry is remembered with its feed, its title, date and stamp, how often it failed and
when it may be tried again: after one hour, then twice as long after each further failure, at
most a day. It is retried from here, so a feed that has not changed is not read again in full
because of it; once the entry is no longer among the feed's newest `feeds.max_entries`, it is
forgotten.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from retrieval.errors import InputError
from retrieval.files import FileMissingError, FileRefusedError, display_path, read_json_file
from retrieval.ingest.web import FeedEntry
from retrieval.settings import Settings

FIRST_PAUSE = dt.timedelta(hours=1)
LONGEST_PAUSE = dt.timedelta(days=1)
# The tables of the state file: "added" a list of URLs, the others objects of objects, by URL.
STATE_TABLES = ("added", "validators", "entries", "failed", "refreshed")
MAX_STATE_BYTES = 64 * 1024 * 1024
# The text fields of each object table's entries.
TEXT_FIELDS = {
    "validators": ("etag", "last_modified"),
    "entries": ("source", "stamp"),
    "failed": ("feed", "title", "published", "stamp", "retry_at", "reason"),
    "refreshed": ("at",),  # each feed's last read (ISO time) and how many articles it brought ("new")
}
# Fields that hold a whole number, in any table.
COUNT_FIELDS = ("failures", "new")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, path)


def failure_record(
    previous: dict[str, Any] | None, feed: str, entry: FeedEntry, reason: str, when: dt.datetime
) -> dict[str, Any]:
    """The record of `entry` of `feed` failing (again, if `previous` is its record for the same stamp)."""
    again = isinstance(previous, dict) and previous.get("stamp") == entry.stamp
    failures = int(previous.get("failures", 0)) + 1 if again and previous else 1
    pause = min(FIRST_PAUSE * 2 ** max(0, min(failures - 1, 16)), LONGEST_PAUSE)
    return {
        "feed": feed,
        "title": entry.title,
        "published": entry.published,
        "stamp": entry.stamp,
        "failures": failures,
        "retry_at": (when + pause).isoformat(timespec="seconds"),
        "reason": reason,
    }


def is_due(record: dict[str, Any], when: dt.datetime) -> bool:
    """Whether a failed entry's pause is over (a record whose time cannot be read is due)."""
    try:
        return dt.datetime.fromisoformat(str(record.get("retry_at"))) <= when
    except (TypeError, ValueError):
        return True


def entry_of(link: str, record: dict[str, Any]) -> FeedEntry:
    """The feed entry a failure record stands for, to retry it without reading its feed."""
    return FeedEntry(link, str(record.get("title", "")), str(record.get("published", "")), str(record.get("stamp", "")))


def state_problem(state: Any) -> str:
    """What is wrong with the shape of a feeds.json value ("" when nothing is)."""
    if not isinstance(state, dict):
        return f"expected a JSON object, found {_json_type(state)}"
    added = state.get("added", [])
    if not isinstance(added, list) or not all(isinstance(url, str) for url in added):
        return "'added' must be a list of URLs"
    for key, fields in TEXT_FIELDS.items():
        table = state.get(key, {})
        if not isinstance(table, dict) or not all(isinstance(value, dict) for value in table.values()):
            return f"'{key}' must be an object of objects, by URL"
        for value in table.values():
            if not all(isinstance(value.get(name, ""), str) for name in fields):
                return f"'{key}' must hold text in {', '.join(fields)}"
            for name in COUNT_FIELDS:
                if type(value.get(name, 0)) is not int:
                    return f"'{key}' must hold a whole number in {name}"
    return ""


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(type(value), "a number")


DEFAULT_PORTS = {"http": 80, "https": 443}
# Control and format characters, line and paragraph separators: never part of an address.
_NOT_IN_URLS = {"Cc", "Cf", "Zl", "Zp"}


def normalise_feed_url(text: str) -> str:
    """A feed's address as it is kept and compared: surrounding whitespace stripped, the scheme and
    host lower-cased, the default port and the fragment dropped, an empty path made "/".

    InputError (one line, the address shown escaped) for control characters, another scheme, no
    host or a port that is not a number.
    """
    url = text.strip()
    bad = next((i for i, char in enumerate(url) if unicodedata.category(char) in _NOT_IN_URLS), -1)
    if bad >= 0:
        raise InputError(
            f"not a feed URL: {ascii(url)} holds the control character {ascii(url[bad])} "
            f"at position {bad + 1}: give the address alone",
            exit_code=2,
        )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InputError(f"not a feed URL: {url} (give an http:// or https:// address)", exit_code=2)
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"not a feed URL: {url} (its port is not a number from 0 to 65535)", exit_code=2) from None
    user = parts.netloc.rpartition("@")[0]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = (f"{user}@" if user else "") + host + (f":{port}" if port not in (None, DEFAULT_PORTS[scheme]) else "")
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _comparable(url: str) -> str:
    """`url` normalised, or as it is when it cannot be (a feed listed before URLs were normalised)."""
    try:
        return normalise_feed_url(url)
    except InputError:
        return url


class FeedList:
    """The feeds to refresh and what is known of them, in `<data.dir>/feeds.json`."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.data.dir / "feeds.json"
        self.configured = list(settings.feeds.urls)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            state = read_json_file(self.path, MAX_STATE_BYTES)
        except FileMissingError:
            state = {}
        except FileRefusedError as exc:
            raise self._unreadable(exc.reason) from exc
        problem = state_problem(state)
        if problem:
            raise self._unreadable(problem)
        for key in STATE_TABLES:
            state.setdefault(key, [] if key == "added" else {})
        return state

    def _unreadable(self, reason: str) -> InputError:
        return InputError(f"cannot read {display_path(self.path)} ({reason}): fix or delete it", exit_code=2)

    def urls(self) -> list[str]:
        """The config's feeds, then the added ones."""
        return list(dict.fromkeys([*self.configured, *self._read()["added"]]))

    def add(self, url: str) -> bool:
        """Add a feed, normalised (`normalise_feed_url`); False when it is already listed, in any spelling."""
        url = normalise_feed_url(url)
        with self._lock:
            state = self._read()
            if any(_comparable(listed) == url for listed in [*self.configured, *state["added"]]):
                return False
            state["added"].append(url)
            _atomic_write_json(self.path, state)
            return True

    def remove(self, url: str) -> None:
        """Remove an added feed, however its address is spelt."""
        wanted = normalise_feed_url(url)
        with self._lock:
            state = self._read()
            url = next((listed for listed in state["added"] if _comparable(listed) == wanted), wanted)
            if url not in state["added"]:
                where = (
                    "it is listed in the config file's [feeds] urls: remove it there"
                    if any(_comparable(listed) == wanted for listed in self.configured)
                    else ("it is not listed: `qabot feeds list` shows the feeds")
                )
                raise InputError(f"cannot remove {wanted}: {where}", exit_code=2)
            state["added"].remove(url)
            state["validators"].pop(url, None)
            state["refreshed"].pop(url, None)
            state["failed"] = {link: r for link, r in state["failed"].items() if r.get("feed") != url}
            _atomic_write_json(self.path, state)

    def update(self, change: Callable[[dict[str, Any]], None]) -> None:
        with self._lock:
            state = self._read()
            change(state)
            _atomic_write_json(self.path, state)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self._read()
