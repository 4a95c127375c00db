"""Feeds are bounded: a refresh reads a feed's newest `feeds.max_entries` entries, a failed entry
is tried again after a pause that grows (without reading its feed again), and a feed's failures
are one warning, not one per entry.

The local news site on 127.0.0.1 (`tests/web_standin.py`) serves the feeds and counts requests.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from retrieval.engine import QAEngine
from retrieval.settings import load_settings
from tests.conftest import make_settings, run_qabot
from tests.web_standin import FACTS, NewsSite, qabot_env, rss

TODAY = dt.date.today()
NOW = time.time()


@pytest.fixture()
def site():
    with NewsSite() as news:
        yield news


def dated_items(site: NewsSite, prefix: str, count: int) -> list[dict[str, str]]:
    """`count` feed items, item n published n hours ago, listed in a shuffled order."""
    items = []
    for number in range(count):
        stamp = formatdate(NOW - 3600 * number, usegmt=True)
        link = site.url(f"{prefix}/{number}")
        items.append({"title": f"Story {number}", "link": link, "pubDate": stamp, "updated": stamp})
    random.Random(7).shuffle(items)
    return items


def test_max_entries_is_a_documented_setting_of_50():
    assert load_settings().feeds.max_entries == 50


def test_a_2000_entry_feed_is_read_newest_first_up_to_max_entries(site, tmp_path):
    """2,000 entries (a 100,000-entry feed behaves the same, up to the page size cap): only the
    newest `max_entries` are fetched, whatever their order in the feed."""
    items = dated_items(site, "/big", 2000)
    newest = 8
    for number in range(newest):
        topic, fact = FACTS[number % len(FACTS)]
        site.article(f"/big/{number}", f"Story {number}: the {topic}", f"{fact} Report {number}.", TODAY.isoformat())
    feed = site.feed("/feed.rss", rss(items))
    engine = QAEngine(
        make_settings(
            tmp_path / "index",
            fetch={"allow_private_hosts": True},
            feeds={"urls": [feed], "max_entries": newest},
        )
    )
    report = engine.web.refresh()
    assert (report.new, report.failed) == (newest, [])
    fetched = {path for path in site.requests if path.startswith("/big/")}
    assert fetched == {f"/big/{number}" for number in range(newest)}
    assert site.fetched("/big/") == newest
    record = engine.web.feeds.state()["refreshed"][feed]  # what /feeds shows of it
    assert record["new"] == newest and record["at"].startswith(TODAY.isoformat()[:4])


def _feeds_state(data_dir: Path) -> dict:
    return json.loads((data_dir / "feeds.json").read_text())


def test_failing_entries_are_one_warning_and_retried_after_a_pause_without_reading_the_feed(site, tmp_path):
    good = site.articles("/good", 1, TODAY.isoformat())
    broken = [
        {"title": f"Gone {n}", "link": site.url(f"/gone/{n}"), "pubDate": good[0]["pubDate"], "updated": ""}
        for n in range(30)
    ]
    feed = site.feed("/feed.rss", rss(good + broken))
    env = qabot_env(tmp_path, feed)

    first = run_qabot("refresh", env=env)
    assert first.returncode == 1, first.stderr  # some failed, some were indexed
    warnings = [line for line in first.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, first.stderr
    assert warnings[0].startswith(f"warning: {feed}: 30 entries could not be fetched")
    assert "HTTP 404" in warnings[0]
    assert site.fetched("/gone/") == 30
    failed = _feeds_state(tmp_path / "data")["failed"]
    assert sorted(failed) == sorted(item["link"] for item in broken)
    assert {record["failures"] for record in failed.values()} == {1}

    # The feed is unchanged and the failed entries are still pausing: one small 304, nothing else.
    second = run_qabot("refresh", env=env)
    assert second.returncode == 0, second.stderr
    assert "warning:" not in second.stderr
    assert site.not_modified["/feed.rss"] == 1 and site.fetched("/gone/") == 30

    # Their pause is over: they are tried again, and the feed is still not read in full.
    state = _feeds_state(tmp_path / "data")
    for record in state["failed"].values():
        record["retry_at"] = "2000-01-01T00:00:00+00:00"
    (tmp_path / "data" / "feeds.json").write_text(json.dumps(state))
    third = run_qabot("refresh", env=env)
    assert len([line for line in third.stderr.splitlines() if line.startswith("warning:")]) == 1, third.stderr
    assert site.fetched("/gone/") == 60 and site.fetched("/good/") == 1
    assert site.not_modified["/feed.rss"] == 2
    failed = _feeds_state(tmp_path / "data")["failed"]
    assert {record["failures"] for record in failed.values()} == {2}
    pause = dt.datetime.fromisoformat(next(iter(failed.values()))["retry_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=1, minutes=50) < pause <= dt.timedelta(hours=2)  # twice the first pause

    # The feed changes and no longer lists them: they are forgotten.
    site.feed("/feed.rss", rss(good))
    fourth = run_qabot("refresh", "--json", env=env)
    assert json.loads(fourth.stdout)["failed"] == []
    assert _feeds_state(tmp_path / "data")["failed"] == {}


def test_index_with_feeds_reports_each_failed_entry_in_json_and_one_failure_per_feed(site, tmp_path):
    article = site.article("/news/kept", "Marathon result", FACTS[4][1], TODAY.isoformat())
    broken = [{"title": "Gone", "link": site.url(f"/gone/{n}"), "pubDate": "", "updated": ""} for n in range(2)]
    feed = site.feed("/feed.rss", rss(broken))
    result = run_qabot("index", article, "--feeds", "--json", env=qabot_env(tmp_path, feed))
    assert result.returncode == 1, result.stderr
    web = json.loads(result.stdout)["web"]
    assert web["new"] == 1
    assert [failure["path"] for failure in web["failed"]] == [feed]
    assert sorted(failure["path"] for failure in web["entries_failed"]) == [item["link"] for item in broken]
    assert all(failure["reason"].startswith("HTTP 404") for failure in web["entries_failed"])
