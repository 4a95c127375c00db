"""Keeping the index current from the web: article URLs, RSS and Atom feeds, retention, dates and links.

A local news site on 127.0.0.1 (`tests/web_standin.py`) serves the feeds and pages, with
`fetch.allow_private_hosts` on; it counts the requests it answers.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from email.utils import formatdate
from pathlib import Path

import pytest
from rich.console import Console

from retrieval.engine import QAEngine
from retrieval.ingest.fetch import FetchLimits, SafeFetcher
from tests.conftest import make_settings, run_qabot
from tests.web_standin import FACTS, NewsSite, atom, rss

TODAY = dt.date.today()
RECENT = (TODAY - dt.timedelta(days=2)).isoformat()


@pytest.fixture()
def site():
    with NewsSite() as news:
        yield news


def web_settings(tmp_path: Path, **sections):
    sections.setdefault("fetch", {}).setdefault("allow_private_hosts", True)
    return make_settings(tmp_path / "index", **sections)


def web_engine(tmp_path: Path, **sections) -> QAEngine:
    return QAEngine(web_settings(tmp_path, **sections))


def indexed_passages(engine: QAEngine, url: str) -> list[str]:
    return [p.content for p in engine.index.passages if p.source == url]


def test_an_article_url_is_indexed_with_its_title_date_author_and_canonical_url(site, tmp_path):
    url = site.article("/news/bridge", "Mayor opens the harbour bridge", FACTS[0][1], RECENT)
    engine = web_engine(tmp_path)
    report = engine.web.index_urls([url + "?utm_source=feed"])
    assert (report.new, report.changed, report.failed) == (1, 0, [])
    [article] = report.articles
    assert article == {"title": "Mayor opens the harbour bridge", "url": url, "published": RECENT, "passages": 1}
    passage = engine.index.passages[0]
    assert (passage.source, passage.url, passage.published) == (url, url, RECENT)
    assert "Port Ellis" in passage.content and "Home | News" not in passage.content  # the main text only


def test_answers_carry_the_article_date_and_url(site, tmp_path):
    url = site.article("/news/bridge", "Mayor opens the harbour bridge", FACTS[0][1], RECENT)
    engine = web_engine(tmp_path)
    engine.web.index_urls([url])
    answer = engine.ask("Who opened the harbour bridge?")
    assert "mayor" in answer.text.lower()
    assert (answer.url, answer.published) == (url, RECENT)
    assert answer.to_dict()["url"] == url and answer.to_dict()["published"] == RECENT
    assert answer.to_dict()["passages"][0]["url"] == url


def test_old_indexes_without_dates_and_links_still_load(copy_of_seed_index):
    generation = copy_of_seed_index / (copy_of_seed_index / "CURRENT").read_text().strip()
    lines = (generation / "passages.jsonl").read_text().splitlines()
    old = [json.dumps({k: v for k, v in json.loads(line).items() if k not in ("published", "url")}) for line in lines]
    (generation / "passages.jsonl").write_text("\n".join(old) + "\n")
    engine = QAEngine(make_settings(copy_of_seed_index))
    from retrieval.stores.embedded.index_folder import load_index

    index = load_index(copy_of_seed_index, engine.embedding_id, verify=False)
    assert index.passages[0].published == "" and index.passages[0].url == ""


def test_a_refresh_of_a_50_entry_feed_with_5_new_articles_fetches_only_those(site, tmp_path):
    items = site.articles("/rss", 50, RECENT)
    feed = site.feed("/feed.rss", rss(items[5:]))
    engine = web_engine(tmp_path, feeds={"urls": [feed]})
    first = engine.web.refresh()
    assert (first.new, first.failed) == (45, [])
    assert site.fetched("/rss/") == 45

    site.feed("/feed.rss", rss(items))  # five new entries at the top
    before = site.fetched("/rss/")
    second = engine.web.refresh()
    assert (second.new, second.unchanged, second.failed) == (5, 0, [])
    assert site.fetched("/rss/") - before == 5
    assert {p.source for p in engine.index.passages} == {i["link"] for i in items}

    unchanged = engine.web.refresh()  # the feed has not changed: one small request, answered 304
    assert (unchanged.feeds_unchanged, unchanged.new) == (1, 0)
    assert site.not_modified["/feed.rss"] == 1
    assert site.fetched("/rss/") - before == 5


def test_a_feed_validated_by_its_date_alone_is_asked_if_modified_since(site, tmp_path):
    site.send_etags = False
    items = site.articles("/dated", 2, RECENT)
    engine = web_engine(tmp_path, feeds={"urls": [site.feed("/feed.rss", rss(items))]})
    assert engine.web.refresh().new == 2
    again = engine.web.refresh()
    assert (again.feeds_unchanged, again.new) == (1, 0)
    assert site.not_modified["/feed.rss"] == 1 and site.fetched("/dated/") == 2


def test_an_atom_feed_is_read_and_its_entry_dates_kept(site, tmp_path):
    items = site.articles("/atom", 3, RECENT)
    feed = site.feed("/feed.atom", atom(items), "application/atom+xml")
    engine = web_engine(tmp_path, feeds={"urls": [feed]})
    report = engine.web.refresh()
    assert (report.new, report.failed) == (3, [])
    assert {p.published for p in engine.index.passages} == {RECENT}


def test_a_changed_article_replaces_its_passages(site, tmp_path):
    url = site.article("/news/strike", "Rail strike ends", FACTS[3][1], RECENT)
    engine = web_engine(tmp_path)
    engine.web.index_urls([url])
    assert any("nine days" in text for text in indexed_passages(engine, url))

    changed = "Train drivers in Calder ended their strike after ten days."
    site.article("/news/strike", "Rail strike ends", changed, RECENT)
    report = engine.web.index_urls([url])
    assert (report.new, report.changed) == (0, 1)
    texts = indexed_passages(engine, url)
    assert any("ten days" in text for text in texts) and not any("nine days" in text for text in texts)
    assert len(texts) == report.articles[0]["passages"]
    assert engine.web.index_urls([url]).unchanged == 1


def test_a_feed_entry_that_changed_is_fetched_again(site, tmp_path):
    items = site.articles("/upd", 2, RECENT)
    engine = web_engine(tmp_path, feeds={"urls": [site.feed("/feed.rss", rss(items))]})
    engine.web.refresh()
    site.article("/upd/0", items[0]["title"], "The marathon was won by Kai Berg in record time.", RECENT)
    items[0] = {**items[0], "pubDate": formatdate(usegmt=True)}  # the entry says it was updated
    site.feed("/feed.rss", rss(items))
    report = engine.web.refresh()
    assert (report.new, report.changed) == (0, 1)
    assert any("Kai Berg" in text for text in indexed_passages(engine, items[0]["link"]))


def test_retention_drops_articles_older_than_max_age_days(site, tmp_path):
    old = site.article("/news/old", "An old library story", FACTS[2][1], "2020-01-15")
    items = site.articles("/new", 1, RECENT)
    engine = web_engine(tmp_path, index={"max_age_days": 30}, feeds={"urls": [site.feed("/feed.rss", rss(items))]})
    engine.web.index_urls([old])
    assert indexed_passages(engine, old)
    report = engine.web.refresh()
    assert (report.new, report.dropped) == (1, 1)
    assert not indexed_passages(engine, old)
    assert indexed_passages(engine, items[0]["link"])


def test_failures_are_reported_with_their_reasons_and_the_rest_goes_on(site, tmp_path):
    kept = site.article("/news/kept", "Marathon result", FACTS[4][1], RECENT)
    good = site.articles("/good", 1, RECENT)
    bad = [
        {"title": path, "link": site.url(path), "pubDate": good[0]["pubDate"], "updated": good[0]["updated"]}
        for path in ("/bad/404", "/bad/500", "/bad/slow", "/bad/loop", "/bad/bomb", "/bad/image", "/bad/empty")
    ]
    feeds = [site.feed("/feed.rss", rss(bad + good)), site.url("/bad/feed"), site.url("/bad/404")]
    engine = web_engine(tmp_path, feeds={"urls": feeds}, fetch={"timeout_seconds": 3.0})
    site.slow_seconds = 6.0
    engine.web.index_urls([kept])
    report = engine.web.refresh()
    failures = report.failed + report.entries_failed
    reasons = {failure.path.removeprefix(site.base): failure.reason for failure in failures}
    assert reasons["/bad/404"].startswith("HTTP 404")
    assert reasons["/bad/500"].startswith("HTTP 500")
    assert "timed out" in reasons["/bad/slow"]
    assert "redirects" in reasons["/bad/loop"]
    assert "bigger than 5 MB" in reasons["/bad/bomb"]
    assert "not HTML or XML" in reasons["/bad/image"]
    assert "no article text" in reasons["/bad/empty"]
    assert "not a valid RSS or Atom feed" in reasons["/bad/feed"]
    assert report.new == 1
    assert indexed_passages(engine, kept) and indexed_passages(engine, good[0]["link"])
    # The feed's failed entries are one failure, and are tried again only after a pause: the feed
    # is not read in full again because of them.
    [summary] = [failure for failure in report.failed if failure.path == feeds[0]]
    assert summary.reason.startswith("7 entries could not be fetched or indexed (first: ")
    again = engine.web.refresh()
    assert again.entries_failed == [] and site.not_modified["/feed.rss"] == 1


def test_refresh_without_feeds_or_index_writes_nothing(tmp_path):
    engine = web_engine(tmp_path, index={"max_age_days": 7})
    report = engine.web.refresh()
    assert (report.feeds, report.new) == (0, 0)
    assert engine.is_empty()


def test_near_ties_go_to_the_newer_article(site, tmp_path):
    body = "The harbour bridge of Port Ellis was opened by the mayor on Saturday."
    older = site.article("/news/2019", "Bridge opened", body, "2019-05-01")
    newer = site.article("/news/2026", "Bridge opened", body, RECENT)
    engine = web_engine(tmp_path)
    engine.web.index_urls([older])  # the older one first: without the rule it would win the tie
    engine.web.index_urls([newer])
    answer = engine.ask("Who opened the harbour bridge?")
    assert answer.url == newer and answer.published == RECENT
    assert [p.url for p in answer.passages[:2]] == [newer, older]


def test_feeds_are_added_listed_and_removed_in_the_data_folder(tmp_path):
    configured = "https://news.example/rss"
    engine = web_engine(tmp_path, feeds={"urls": [configured]})
    feeds = engine.web.feeds
    assert feeds.add("https://other.example/atom") is True
    assert feeds.add("https://other.example/atom") is False
    assert feeds.urls() == [configured, "https://other.example/atom"]
    assert json.loads(feeds.path.read_text())["added"] == ["https://other.example/atom"]
    feeds.remove("https://other.example/atom")
    assert feeds.urls() == [configured]
    with pytest.raises(Exception, match="config file"):
        feeds.remove(configured)


def test_cli_indexes_urls_and_answers_show_date_and_url(site, tmp_path):
    url = site.article("/news/wind", "Wind farm delivers power", FACTS[1][1], RECENT)
    env = {
        "QABOT_INDEX_DIR": str(tmp_path / "index"),
        "QABOT_DATA_DIR": str(tmp_path / "data"),
        "QABOT_FETCH_ALLOW_PRIVATE_HOSTS": "true",
        "QABOT_MODELS_READER": "qabot-tests/no-such-reader-model",
    }
    indexed = run_qabot("index", url, site.url("/bad/404"), "--json", env=env)
    assert indexed.returncode == 1, indexed.stderr  # one of the two addresses failed
    summary = json.loads(indexed.stdout)
    assert summary["web"]["new"] == 1
    assert summary["web"]["failed"][0]["reason"].startswith("HTTP 404")

    asked = run_qabot("ask", "How many turbines does the wind farm have?", "--json", env=env)
    answer = json.loads(asked.stdout)
    assert (answer["url"], answer["published"]) == (url, RECENT)
    assert answer["passages"][0]["published"] == RECENT

    shown = run_qabot("ask", "How many turbines does the wind farm have?", env={**env, "COLUMNS": "200"})
    assert "Wind farm delivers power" in shown.stdout
    assert RECENT in shown.stdout and url in shown.stdout

    refused = run_qabot("index", "http://127.0.0.1:1/x", env={**env, "QABOT_FETCH_ALLOW_PRIVATE_HOSTS": "false"})
    assert refused.returncode == 2  # nothing was indexed
    assert "refused" in refused.stderr and "Traceback" not in refused.stderr


def test_cli_manages_feeds_and_refreshes(site, tmp_path):
    items = site.articles("/cli", 2, RECENT)
    feed = site.feed("/feed.rss", rss(items))
    env = {
        "QABOT_INDEX_DIR": str(tmp_path / "index"),
        "QABOT_DATA_DIR": str(tmp_path / "data"),
        "QABOT_FETCH_ALLOW_PRIVATE_HOSTS": "true",
    }
    assert run_qabot("feeds", "add", feed, env=env).returncode == 0
    listed = run_qabot("feeds", "list", "--json", env=env)
    assert json.loads(listed.stdout) == [{"url": feed, "from": "added"}]
    refreshed = run_qabot("index", "--feeds", "--json", env=env)
    assert refreshed.returncode == 0, refreshed.stderr
    assert json.loads(refreshed.stdout)["web"]["new"] == 2
    assert json.loads(run_qabot("refresh", "--json", env=env).stdout)["feeds_unchanged"] == 1
    site.feed("/feed.rss", rss(items[:1]))  # the feed changed, its remaining entry did not
    text = run_qabot("refresh", env=env)
    assert "Fetched: 0 new, 0 changed, 0 unchanged, 0 failed, 0 dropped by age; 0 of 1 feed unchanged" in text.stdout
    assert run_qabot("feeds", "remove", feed, env=env).returncode == 0
    missing = run_qabot("feeds", "remove", feed, env=env)
    assert missing.returncode == 2 and "not listed" in missing.stderr


def test_chat_refresh_command_reads_the_feeds(site, tmp_path):
    from bot.chat import run_chat

    items = site.articles("/chat", 1, RECENT)
    engine = web_engine(tmp_path, feeds={"urls": [site.feed("/feed.rss", rss(items))]})
    console = Console(file=io.StringIO(), width=200)
    run_chat(engine, console, io.StringIO("/refresh\nWho opened the harbour bridge?\n"))
    shown = console.file.getvalue()
    assert "1 new" in shown
    assert items[0]["link"] in shown and RECENT in shown


def test_the_fetcher_is_the_engine_s_safe_fetcher_with_the_configured_limits(tmp_path):
    engine = QAEngine(make_settings(tmp_path / "index", fetch={"max_page_mb": 2, "max_redirects": 3}))
    fetcher = engine.web.fetcher
    assert isinstance(fetcher, SafeFetcher)
    assert fetcher.limits == FetchLimits(max_bytes=2 * 1024 * 1024, timeout=10.0, max_redirects=3)


def test_the_recency_rule_reorders_near_ties_only():
    from haystack import Document

    from retrieval.answering.rerank import newest_first_among_ties

    def passage(name: str, score: float, published: str = "") -> Document:
        return Document(content=name, score=score, meta={"published": published})

    ranked = [
        passage("old best", 0.80, "2019-01-01"),
        passage("new, 0.01 behind", 0.79, "2026-11-01"),
        passage("undated, tied", 0.79),
        passage("newest, clearly worse", 0.70, "2026-11-29"),
    ]
    reordered = [d.content for d in newest_first_among_ties(ranked, margin=0.02)]
    assert reordered == ["new, 0.01 behind", "old best", "undated, tied", "newest, clearly worse"]
    assert [d.content for d in newest_first_among_ties(ranked, margin=0.0)] == [d.content for d in ranked]
