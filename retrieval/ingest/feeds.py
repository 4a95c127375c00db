"""Keeping the index current from the web: article URLs and the feeds, refreshed with conditional GET.

The feeds are the config's `feeds.urls` plus those added with `qabot feeds add`, kept in
`<data.dir>/feeds.json` together with each feed's ETag and Last-Modified and the entries already
indexed, so that a refresh asks an unchanged feed one small question and fetches only new or
changed entries. Failures are collected with their reasons; they never stop the rest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document

from retrieval.errors import IndexMissingError, InputError
from retrieval.ingest.articles import SkippedFile
from retrieval.ingest.fetch import FetchError, FetchLimits, SafeFetcher
from retrieval.ingest.indexing import Expired, IndexReport, NothingToIndexError, Progress, no_progress
from retrieval.ingest.web import FeedEntry, article_from_page, feed_entries, is_url
from retrieval.settings import Settings

# Pages fetched at once: a web server's latency, not the CPU, is what a refresh waits for.
FETCH_WORKERS = 4
# write(articles, progress, expired) -> IndexReport: the index writer, bound to the engine's index.
Write = Callable[[Iterable[Document | SkippedFile], Progress, Expired | None], IndexReport]


@dataclass
class WebReport:
    """What one fetch of URLs or refresh of the feeds did."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: list[SkippedFile] = field(default_factory=list)
    dropped: int = 0
    feeds: int = 0
    feeds_unchanged: int = 0
    articles: list[dict[str, Any]] = field(default_factory=list)
    passages_total: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "failed": [f.__dict__ for f in self.failed]}


def fetch_limits(settings: Settings) -> FetchLimits:
    fetch = settings.fetch
    return FetchLimits(
        max_bytes=int(fetch.max_page_mb * 1024 * 1024),
        timeout=fetch.timeout_seconds,
        max_redirects=fetch.max_redirects,
        allow_private_hosts=fetch.allow_private_hosts,
    )


def _atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, path)


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
        state.setdefault("added", [])
        state.setdefault("validators", {})
        state.setdefault("entries", {})
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
            _atomic_write_json(self.path, state)

    def update(self, change: Callable[[dict[str, Any]], None]) -> None:
        with self._lock:
            state = self._read()
            change(state)
            _atomic_write_json(self.path, state)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self._read()


class WebIndexer:
    """Fetches article URLs and feed entries safely and hands the articles to the index writer."""

    def __init__(
        self,
        settings: Settings,
        sources: Callable[[], dict[str, Any]],
        write: Write,
        fetcher: SafeFetcher | None = None,
    ) -> None:
        """`sources()` gives the passage store's source table; `write` hands articles to the index writer."""
        self.settings = settings
        self.sources = sources
        self.write = write
        self.fetcher = fetcher or SafeFetcher(fetch_limits(settings))
        self.feeds = FeedList(settings)
        # One refresh at a time (the bot's timer and an admin's /add may meet).
        self._running = threading.Lock()

    def _indexed_sources(self) -> dict[str, Any]:
        try:
            return dict(self.sources())
        except IndexMissingError:
            return {}

    def _fetch_article(self, url: str, entry: FeedEntry | None) -> Document | SkippedFile:
        try:
            page = self.fetcher.fetch(url)
            return article_from_page(page, entry.title if entry else "", entry.published if entry else "")
        except FetchError as exc:
            return SkippedFile(url, str(exc))

    def _fetch_all(
        self, targets: list[tuple[str, FeedEntry | None]], progress: Progress
    ) -> list[Document | SkippedFile]:
        progress("fetching", 0, len(targets))
        results: list[Document | SkippedFile] = []
        with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
            for number, result in enumerate(pool.map(lambda t: self._fetch_article(*t), targets), 1):
                results.append(result)
                progress("fetching", number, len(targets))
        return results

    def _index(
        self,
        fetched: list[Document | SkippedFile],
        report: WebReport,
        progress: Progress,
        expired: Expired | None = None,
    ) -> None:
        report.failed.extend(f for f in fetched if isinstance(f, SkippedFile))
        articles = [f for f in fetched if isinstance(f, Document)]
        if not articles and (expired is None or not self._indexed_sources()):
            return
        try:
            written = self.write(articles, progress, expired)
        except NothingToIndexError as nothing:  # every page fetched had no sentence: failures like the others
            report.failed.extend(SkippedFile(s.path, s.reason) for s in nothing.skipped)
            return
        report.changed += written.files_changed
        report.new += written.files_indexed - written.files_changed
        report.unchanged += written.files_unchanged
        report.dropped += written.sources_dropped
        report.passages_total = written.passages_total
        sources = self._indexed_sources()
        for article in articles:
            source = article.meta["source"]
            known = sources.get(source, {})
            report.articles.append(
                {
                    "title": known.get("title", article.meta.get("title", "")),
                    "url": source,
                    "published": article.meta.get("published", ""),
                    "passages": known.get("passages", 0),
                }
            )

    def index_urls(self, urls: list[str], progress: Progress = no_progress) -> WebReport:
        """Fetch and index these article URLs; a changed article replaces its passages."""
        started = time.perf_counter()
        report = WebReport()
        with self._running:
            self._index(self._fetch_all([(u, None) for u in urls], progress), report, progress)
        report.seconds = time.perf_counter() - started
        return report

    def _expired(self) -> Expired | None:
        days = self.settings.index.max_age_days
        if not days:
            return None
        cutoff = (dt.date.today() - dt.timedelta(days=days)).isoformat()

        def expired(sources: dict[str, Any]) -> set[str]:
            """Articles dated (or, undated, last fetched) before the cutoff; files without a date are kept."""
            return {s for s, meta in sources.items() if (meta.get("published") or meta.get("fetched") or "9") < cutoff}

        return expired

    def refresh(self, progress: Progress = no_progress) -> WebReport:
        """Read every feed (conditional GET), fetch the entries not yet indexed, index them, drop expired articles."""
        started = time.perf_counter()
        report = WebReport()
        with self._running:
            state = self.feeds.state()
            indexed = self._indexed_sources()
            days = self.settings.index.max_age_days
            cutoff = (dt.date.today() - dt.timedelta(days=days)).isoformat() if days else ""
            targets: dict[str, FeedEntry] = {}
            feed_of: dict[str, str] = {}
            validators: dict[str, dict[str, str]] = {}
            for feed_url in self.feeds.urls():
                report.feeds += 1
                known = state["validators"].get(feed_url, {})
                try:
                    page = self.fetcher.fetch(feed_url, known.get("etag", ""), known.get("last_modified", ""))
                    entries = [] if page.not_modified else feed_entries(page)
                except FetchError as exc:
                    report.failed.append(SkippedFile(feed_url, str(exc)))
                    continue
                if page.not_modified:
                    report.feeds_unchanged += 1
                    continue
                validators[feed_url] = {"etag": page.etag, "last_modified": page.last_modified}
                for entry in entries:
                    seen = state["entries"].get(entry.link)
                    if seen and seen.get("stamp") == entry.stamp and seen.get("source") in indexed:
                        continue
                    if cutoff and entry.published and entry.published < cutoff:
                        continue
                    targets.setdefault(entry.link, entry)
                    feed_of.setdefault(entry.link, feed_url)
            fetched = self._fetch_all([(link, entry) for link, entry in targets.items()], progress)
            self._index(fetched, report, progress, self._expired())
            # A feed with an entry that failed is read in full again next time, so the entry is retried.
            for link, result in zip(targets, fetched, strict=True):
                if isinstance(result, SkippedFile):
                    validators.pop(feed_of[link], None)
            entries = {
                link: {"source": result.meta["source"], "stamp": entry.stamp}
                for (link, entry), result in zip(targets.items(), fetched, strict=True)
                if isinstance(result, Document)
            }

            def remember(saved: dict[str, Any]) -> None:
                saved["validators"].update(validators)
                saved["entries"].update(entries)

            if validators or entries:
                self.feeds.update(remember)
        report.seconds = time.perf_counter() - started
        return report


def split_targets(targets: list[str]) -> tuple[list[Path], list[str]]:
    """Command-line targets as (paths, URLs)."""
    return [Path(t) for t in targets if not is_url(t)], [t for t in targets if is_url(t)]
