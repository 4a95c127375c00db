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
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retrieval.errors import InputError
from retrieval.ingest.web import FeedEntry
from retrieval.settings import Settings

FIRST_PAUSE = dt.timedelta(hours=1)
LONGEST_PAUSE = dt.timedelta(days=1)
# (key, the type its value must have) for each table of the state file.
STATE_TABLES = (("added", list), ("validators", dict), ("entries", dict), ("failed", dict))


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
    pause = min(FIRST_PAUSE * 2 ** min(failures - 1, 16), LONGEST_PAUSE)
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


class FeedList:
    """The feeds to refresh and what is known of them, in `<data.dir>/feeds.json`."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.data.dir / "feeds.json"
        self.configured = list(settings.feeds.urls)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            state = {}
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {self.path} ({exc}): fix or delete it", exit_code=2) from exc
        for key, kind in STATE_TABLES:
            state.setdefault(key, kind())
        return state

    def urls(self) -> list[str]:
        """The config's feeds, then the added ones."""
        return list(dict.fromkeys([*self.configured, *self._read()["added"]]))

    def add(self, url: str) -> bool:
        """Add a feed; False when it is already listed."""
        if not url.startswith(("http://", "https://")):
            raise InputError(f"not a feed URL: {url} (give an http:// or https:// address)", exit_code=2)
        with self._lock:
            state = self._read()
            if url in self.configured or url in state["added"]:
                return False
            state["added"].append(url)
            _atomic_write_json(self.path, state)
            return True

    def remove(self, url: str) -> None:
        with self._lock:
            state = self._read()
            if url not in state["added"]:
                where = (
                    "it is listed in the config file's [feeds] urls: remove it there"
                    if url in self.configured
                    else ("it is not listed: `qabot feeds list` shows the feeds")
                )
                raise InputError(f"cannot remove {url}: {where}", exit_code=2)
            state["added"].remove(url)
            state["validators"].pop(url, None)
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
