"""The Telegram bot and the web: answers link their article and show its date, admins add articles by
link or /add, and the JobQueue refreshes the feeds while the bot answers.

The real bot against the stand-in Bot API, and the local news site, both on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from retrieval.engine import QAEngine
from tests.conftest import make_settings
from tests.telegram_standin import BotApiStandIn, parse_telegram_html, running_bot
from tests.web_standin import FACTS, NewsSite, rss

TOKEN = "7000002:standin-feeds-token"
ADMIN = 777
STRANGER = 778
BUSY_ADMIN = 779  # an admin of their own, so that the rate limit test starts with a fresh minute
RECENT = (dt.date.today() - dt.timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def site():
    with NewsSite() as news:
        yield news


@pytest.fixture(scope="module")
def bot(site: NewsSite, tmp_path_factory: pytest.TempPathFactory):
    """(stand-in API, engine) of a bot over a web index, refreshing a feed every 0.6 s."""
    folder = tmp_path_factory.mktemp("feeds-bot")
    items = site.articles("/tg", 1, RECENT)
    feed = site.feed("/feed.rss", rss(items))
    sections: dict[str, Any] = {
        "fetch": {"allow_private_hosts": True, "timeout_seconds": 60.0},
        "feeds": {"urls": [feed], "refresh_minutes": 0.01},
    }
    engine = QAEngine(make_settings(folder / "index", **sections))
    engine.web.index_urls([site.article("/tg/wind", "Wind farm delivers power", FACTS[1][1], RECENT)])
    engine.warm_up()

    def settings_for(base_url: str):
        telegram = {"base_url": base_url, "admins": [ADMIN, BUSY_ADMIN]}
        return make_settings(folder / "index", telegram=telegram, **sections)

    with running_bot(TOKEN, engine, settings_for) as (api, _settings):
        yield api, engine, items


def test_the_answer_links_its_article_and_shows_its_date(bot, site):
    api, _, _ = bot
    [reply] = api.ask(901, "How many turbines does the wind farm have?")
    _, tags = parse_telegram_html(reply.text)
    assert ("a", {"href": site.url("/tg/wind")}) in tags
    assert f"Wind farm delivers power · {RECENT}" in reply.visible_text


def test_the_job_queue_refreshes_the_feeds_while_the_bot_runs(bot, site):
    api, engine, items = bot
    link = items[0]["link"]
    api.wait_for(lambda: any(p.source == link for p in engine.index.passages), timeout=60, what="a refresh")
    [reply] = api.ask(902, "Who opened the harbour bridge?")
    _, tags = parse_telegram_html(reply.text)
    assert ("a", {"href": link}) in tags


def test_questions_are_answered_while_a_refresh_waits_for_a_slow_site(bot, site):
    api, engine, items = bot
    api.wait_for(lambda: any(p.source == items[0]["link"] for p in engine.index.passages), timeout=60, what="a refresh")
    held = site.articles("/held", 1, RECENT)
    site.feed("/feed.rss", rss(items + held))
    api.wait_for(lambda: site.requests["/held/0"], timeout=60, what="the refresh to reach the slow page")
    [reply] = api.ask(903, "How many turbines does the wind farm have?")
    assert "forty turbines" in reply.visible_text
    assert not site.release.is_set()  # the refresh is still waiting for the page
    site.release.set()
    link = held[0]["link"]
    api.wait_for(lambda: any(p.source == link for p in engine.index.passages), timeout=60, what="the slow article")


def test_an_admin_adds_an_article_by_link_and_by_command(bot, site):
    api, engine, _ = bot
    library = site.article("/tg/library", "Library reopens", FACTS[2][1], RECENT)
    [added] = api.ask(ADMIN, library)
    assert added.visible_text == "Added “Library reopens” (1 passage)."
    assert any(p.source == library for p in engine.index.passages)
    [again] = api.ask(ADMIN, f"/add {library}")
    assert again.visible_text == "I already have “Library reopens” (1 passage), unchanged."
    [failed] = api.ask(ADMIN, f"/add {site.url('/bad/404')}")
    assert failed.visible_text.startswith("Sorry, I could not add") and "HTTP 404" in failed.visible_text
    [empty] = api.ask(ADMIN, "/add")
    assert "/add https://" in empty.visible_text


def test_anyone_else_is_refused_politely_and_nothing_is_fetched(bot, site):
    api, engine, _ = bot
    marathon = site.article("/tg/marathon", "Marathon result", FACTS[4][1], RECENT)
    [by_link] = api.ask(STRANGER, marathon)
    [by_command] = api.ask(STRANGER, f"/add {marathon}")
    for reply in (by_link, by_command):
        assert reply.visible_text.startswith("Sorry, only the bot's admins can add articles")
    assert site.requests["/tg/marathon"] == 0
    assert not any(p.source == marathon for p in engine.index.passages)


def test_adding_articles_counts_against_the_rate_limit(bot, site):
    api: BotApiStandIn = bot[0]
    urls = [site.article(f"/tg/many/{n}", f"Story {n}", FACTS[n % 5][1], RECENT) for n in range(11)]
    replies = [api.ask(BUSY_ADMIN, url)[0] for url in urls[:10]]
    assert all(reply.visible_text.startswith("Added") for reply in replies)
    [too_fast] = api.ask(BUSY_ADMIN, urls[10])
    assert "faster than I can fetch them" in too_fast.visible_text
    assert site.requests["/tg/many/10"] == 0
