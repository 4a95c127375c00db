"""The command line's web side: fetching URLs and refreshing feeds with progress bars, managing the feed list."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from bot.progress import progress_bars
from retrieval.ingest.feeds import FeedList, WebReport
from retrieval.settings import Settings


def index_web(engine: Any, urls: list[str], feeds: bool, console: Console, quiet: bool = False) -> WebReport:
    """Fetch and index `urls` and, with `feeds`, refresh the feeds; warns about each failure on `console`."""
    with progress_bars(console, quiet) as update:
        report = engine.web.index_urls(urls, progress=update) if urls else WebReport()
        if feeds:
            refreshed = engine.web.refresh(progress=update)
            report = merge_reports(report, refreshed)
    warn_failures(report, console)
    return report


def warn_failures(report: WebReport, console: Console) -> None:
    for failure in report.failed:
        console.print(f"warning: {failure.path}: {failure.reason}", style="yellow", markup=False, soft_wrap=True)


def merge_reports(first: WebReport, second: WebReport) -> WebReport:
    """One report for URLs fetched and feeds refreshed in one command."""
    return WebReport(
        new=first.new + second.new,
        changed=first.changed + second.changed,
        unchanged=first.unchanged + second.unchanged,
        failed=first.failed + second.failed,
        entries_failed=first.entries_failed + second.entries_failed,
        dropped=first.dropped + second.dropped,
        feeds=second.feeds,
        feeds_unchanged=second.feeds_unchanged,
        articles=first.articles + second.articles,
        passages_total=second.passages_total or first.passages_total,
        seconds=first.seconds + second.seconds,
    )


def feed_rows(settings: Settings) -> list[dict[str, str]]:
    """Every feed and where it is listed: "config" (config file or environment) or "added" (`qabot feeds add`)."""
    feeds = FeedList(settings)
    return [{"url": url, "from": "config" if url in feeds.configured else "added"} for url in feeds.urls()]
