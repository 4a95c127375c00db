"""Keeping the index current from the web: article URLs and the feeds, refreshed with conditional GET.

The feeds are the config's `feeds.urls` plus those added with `qabot feeds add`, kept in
`<data.dir>/feeds.json` together with each feed's ETag and Last-Modified and the entries already
indexed, so that a refresh asks an unchanged feed one small question and fetches only new or
changed entries, of its newest `feeds.max_entries` at most. Failures are collected with their
reasons; they never stop the rest. Entries that failed are tried again after a pause that grows
(see `feed_state.py`), and are reported as one warning per feed, not one per entry.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document

from retrieval.errors import IndexMissingError
from retrieval.ingest.articles import SkippedFile
from retrieval.ingest.feed_state import FeedList, entry_of, failure_record, is_due, now
from retrieval.ingest.fetch import FetchError, FetchLimits, SafeFetcher
from retrieval.ingest.indexing import Expired, IndexReport, NothingToIndexError, Progress, no_progress
from retrieval.ingest.web import FeedEntry, article_from_page, feed_entries, is_url, newest_first
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
    failed: list[SkippedFile] = field(default_factory=list)  # a feed's failed entries: one summary
    entries_failed: list[SkippedFile] = field(default_factory=list)  # each failed feed entry
    dropped: int = 0
    feeds: int = 0
    feeds_unchanged: int = 0
    articles: list[dict[str, Any]] = field(default_factory=list)
    passages_total: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "failed": [f.__dict__ for f in self.failed],
            "entries_failed": [f.__dict__ for f in self.entries_failed],
        }


def fetch_limits(settings: Settings) -> FetchLimits:
    fetch = settings.fetch
    return FetchLimits(
        max_bytes=int(fetch.max_page_mb * 1024 * 1024),
        timeout=fetch.timeout_seconds,
        max_redirects=fetch.max_redirects,
        allow_private_hosts=fetch.allow_private_hosts,
    )


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
    ) -> dict[str, str]:
        """Write the fetched articles; the reason each one that failed (fetching or indexing) failed, by URL."""
        failed = {f.path: f.reason for f in fetched if isinstance(f, SkippedFile)}
        articles = [f for f in fetched if isinstance(f, Document)]
        if not articles and (expired is None or not self._indexed_sources()):
            return failed
        try:
            written = self.write(articles, progress, expired)
        except NothingToIndexError as nothing:  # every page fetched had no sentence: failures like the others
            return failed | {s.path: s.reason for s in nothing.skipped}
        failed |= {s.path: s.reason for s in written.skipped}
        report.changed += written.files_changed
        report.new += written.files_indexed - written.files_changed
        report.unchanged += written.files_unchanged
        report.dropped += written.sources_dropped
        report.passages_total = written.passages_total
        sources = self._indexed_sources()
        for article in articles:
            source = article.meta["source"]
            if source in failed:
                continue
            known = sources.get(source, {})
            report.articles.append(
                {
                    "title": known.get("title", article.meta.get("title", "")),
                    "url": source,
                    "published": article.meta.get("published", ""),
                    "passages": known.get("passages", 0),
                }
            )
        return failed

    def index_urls(self, urls: list[str], progress: Progress = no_progress) -> WebReport:
        """Fetch and index these article URLs; a changed article replaces its passages."""
        started = time.perf_counter()
        report = WebReport()
        with self._running:
            failed = self._index(self._fetch_all([(u, None) for u in urls], progress), report, progress)
            report.failed.extend(SkippedFile(path, reason) for path, reason in failed.items())
        report.seconds = time.perf_counter() - started
        return report

    def _expired(self) -> Expired | None:
        days = self.settings.index.max_age_days
        if not days:
            return None
        cutoff = (dt.date.today() - dt.timedelta(days=days)).isoformat()

        def expired(sources: dict[str, Any]) -> set[str]:
            """Web articles dated (or, undated, last fetched) before the cutoff; files, dated or not, are kept."""
            return {
                s
                for s, meta in sources.items()
                if meta.get("fetched") and (meta.get("published") or meta["fetched"]) < cutoff
            }

        return expired

    def refresh(self, progress: Progress = no_progress) -> WebReport:
        """Read every feed (conditional GET), fetch its newest entries not yet indexed and the failed
        entries whose pause is over, index them, drop expired articles."""
        started = time.perf_counter()
        report = WebReport()
        with self._running:
            state = self.feeds.state()
            plan = _RefreshPlan(self.feeds.urls(), self.settings.feeds.max_entries)
            self._read_feeds(state, plan, report)
            plan.add_retries(state["failed"], now())
            targets = list(plan.targets.items())
            fetched = self._fetch_all(targets, progress)
            failed = self._index(fetched, report, progress, self._expired())
            self._remember(state, plan, targets, fetched, failed, report)
        report.seconds = time.perf_counter() - started
        return report

    def _read_feeds(self, state: dict[str, Any], plan: _RefreshPlan, report: WebReport) -> None:
        """Fetch each feed (conditional GET) and plan its newest entries that are new, changed or due."""
        indexed = self._indexed_sources()
        days = self.settings.index.max_age_days
        cutoff = (dt.date.today() - dt.timedelta(days=days)).isoformat() if days else ""
        when = now()
        for feed_url in plan.feeds:
            report.feeds += 1
            known = state["validators"].get(feed_url, {})
            try:
                page = self.fetcher.fetch(feed_url, known.get("etag", ""), known.get("last_modified", ""))
                entries = [] if page.not_modified else newest_first(feed_entries(page), plan.most)
            except FetchError as exc:
                report.failed.append(SkippedFile(feed_url, str(exc)))
                continue
            plan.read.add(feed_url)
            if page.not_modified:
                report.feeds_unchanged += 1
                continue
            plan.validators[feed_url] = {"etag": page.etag, "last_modified": page.last_modified}
            plan.listed[feed_url] = {entry.link for entry in entries}
            for entry in entries:
                seen = state["entries"].get(entry.link)
                if seen and seen.get("stamp") == entry.stamp and seen.get("source") in indexed:
                    continue
                if cutoff and entry.published and entry.published < cutoff:
                    continue
                record = state["failed"].get(entry.link)
                if record and record.get("stamp") == entry.stamp and not is_due(record, when):
                    continue  # failed before and still pausing
                plan.add(feed_url, entry)

    def _remember(
        self,
        state: dict[str, Any],
        plan: _RefreshPlan,
        targets: list[tuple[str, FeedEntry]],
        fetched: list[Document | SkippedFile],
        failed: dict[str, str],
        report: WebReport,
    ) -> None:
        """Save the feeds' validators, the entries indexed and those that failed; one warning per feed."""
        when = now()
        entries: dict[str, dict[str, str]] = {}
        failures: dict[str, dict[str, Any]] = {}
        for (link, entry), result in zip(targets, fetched, strict=True):
            source = result.path if isinstance(result, SkippedFile) else result.meta["source"]
            reason = failed.get(source)
            if reason is None:
                entries[link] = {"source": source, "stamp": entry.stamp}
                continue
            feed = plan.feed_of[link]
            failures[link] = failure_record(state["failed"].get(link), feed, entry, reason, when)
            report.entries_failed.append(SkippedFile(link, reason))
        report.failed.extend(_summaries(report.entries_failed, plan.feed_of))
        brought = Counter(plan.feed_of[link] for link in entries if link in plan.feed_of)
        refreshed = {feed: {"at": when.isoformat(timespec="seconds"), "new": brought[feed]} for feed in plan.read}

        def remember(saved: dict[str, Any]) -> None:
            saved["validators"].update(plan.validators)
            saved["entries"].update(entries)
            kept = {
                link: record
                for link, record in saved["failed"].items()
                if record.get("feed") in plan.feeds
                and link not in entries
                and link in plan.listed.get(record.get("feed"), {link})  # gone from its feed: forgotten
            }
            saved["failed"] = kept | failures
            saved["refreshed"].update(refreshed)

        if plan.validators or entries or failures or state["failed"] or refreshed:
            self.feeds.update(remember)


@dataclass
class _RefreshPlan:
    """The entries one refresh fetches, at most `most` a feed, and what it learnt of the feeds."""

    feeds: list[str]
    most: int
    targets: dict[str, FeedEntry] = field(default_factory=dict)
    feed_of: dict[str, str] = field(default_factory=dict)
    validators: dict[str, dict[str, str]] = field(default_factory=dict)
    listed: dict[str, set[str]] = field(default_factory=dict)  # each feed read in full: its newest links
    read: set[str] = field(default_factory=set)  # the feeds read this time (changed or not)
    per_feed: Counter[str] = field(default_factory=Counter)

    def add(self, feed: str, entry: FeedEntry) -> None:
        if entry.link in self.targets or self.per_feed[feed] >= self.most:
            return
        self.targets[entry.link] = entry
        self.feed_of[entry.link] = feed
        self.per_feed[feed] += 1

    def add_retries(self, failed: dict[str, dict[str, Any]], when: dt.datetime) -> None:
        """The failed entries whose pause is over, of feeds still listed, not read again in full."""
        for link, record in failed.items():
            feed = record.get("feed")
            if feed in self.feeds and feed not in self.listed and is_due(record, when):
                self.add(feed, entry_of(link, record))


def _summaries(failures: list[SkippedFile], feed_of: dict[str, str]) -> list[SkippedFile]:
    """One failure a feed, for its entries that failed: how many, and the first one's reason."""
    by_feed: dict[str, list[SkippedFile]] = {}
    for failure in failures:
        by_feed.setdefault(feed_of[failure.path], []).append(failure)
    summaries = []
    for feed, failed in by_feed.items():
        first = failed[0]
        count = "1 entry" if len(failed) == 1 else f"{len(failed)} entries"
        summaries.append(
            SkippedFile(
                feed,
                f"{count} could not be fetched or indexed (first: {first.path}: {first.reason}); "
                "each is tried again after a pause that grows up to a day",
            )
        )
    return summaries


def split_targets(targets: list[str]) -> tuple[list[Path], list[str]]:
    """Command-line targets as (paths, URLs)."""
    return [Path(t) for t in targets if not is_url(t)], [t for t in targets if is_url(t)]
