"""The admins' commands on Telegram: /list (and /sources_list), /remove ID and /feeds, each logged with the
admin's id; anyone else gets the polite refusal /add gives. The real bot against the stand-in Bot API."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.telegram.admin import NO_FEEDS, feed_lines, source_lines
from bot.telegram.format import COMMANDS
from retrieval.engine import QAEngine
from retrieval.ingest.indexing import short_id
from tests.conftest import make_settings
from tests.telegram_standin import running_bot

TOKEN = "7000003:standin-admin-token"
ADMIN = 881
STRANGER = 882
FEED = "https://news.example.org/feed.rss"
ARTICLES = {
    "rover.txt": ("Rover lands on Mars", "2026-05-07", "The rover landed safely on Mars on Thursday."),
    "bridge.txt": ("Harbour bridge opens", "2026-05-01", "The mayor opened the harbour bridge on Friday."),
    "old.txt": ("Old news", "2025-01-02", "The library closed for repairs in winter."),
}


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory):
    """(stand-in API, engine, article folder) of a bot over three dated files, with one feed listed."""
    folder = tmp_path_factory.mktemp("admin-bot")
    news = folder / "news"
    news.mkdir()
    for name, (title, date, text) in ARTICLES.items():
        (news / name).write_text(f"{title}\nPublished: {date}\n\n{text}\n", encoding="utf-8")
    sections = {"feeds": {"urls": [FEED], "refresh_minutes": 0}}
    engine = QAEngine(make_settings(folder / "index", **sections))
    engine.index_paths([news])
    engine.warm_up()

    def settings_for(base_url: str):
        return make_settings(folder / "index", telegram={"base_url": base_url, "admins": [ADMIN]}, **sections)

    with running_bot(TOKEN, engine, settings_for) as (api, _settings):
        yield api, engine, news


def test_admin_commands_are_in_help_and_the_command_list(bot):
    api, _, _ = bot
    assert {"list", "remove", "feeds"} <= {command for command, _ in COMMANDS}
    [help_reply] = api.ask(ADMIN, "/help")
    assert "/remove id – remove an article" in help_reply.visible_text


def test_list_shows_the_newest_sources_with_title_date_and_a_stable_id(bot, caplog):
    api, _, news = bot
    caplog.set_level(logging.INFO, logger="bot.telegram.admin")
    [reply] = api.ask(ADMIN, "/list")
    lines = reply.visible_text.splitlines()
    rover = str((news / "rover.txt").resolve())
    assert lines[1] == f"{short_id(rover)} · Rover lands on Mars · 2026-05-07"
    assert lines[2].endswith("Harbour bridge opens · 2026-05-01") and lines[3].endswith("Old news · 2025-01-02")
    assert short_id(rover) == short_id(rover) and len(short_id(rover)) == 8
    [alias] = api.ask(ADMIN, "/sources_list")
    assert alias.visible_text == reply.visible_text
    assert any(f"Admin {ADMIN}: list the sources" in record.getMessage() for record in caplog.records)


def test_remove_takes_a_source_out_of_the_index_and_answers_in_one_line(bot, caplog):
    api, engine, news = bot
    caplog.set_level(logging.INFO, logger="bot.telegram.admin")
    old = str((news / "old.txt").resolve())
    [removed] = api.ask(ADMIN, f"/remove {short_id(old)}")
    assert removed.visible_text == f"Removed “Old news” ({short_id(old)}); 2 passages left in the index."
    assert old not in engine.store.sources()
    assert any(f"Admin {ADMIN} removed {old}" in record.getMessage() for record in caplog.records)
    [unknown] = api.ask(ADMIN, f"/remove {short_id(old)}")
    assert unknown.visible_text == f"I have no source with the id {short_id(old)}; /list shows the ids."
    [empty] = api.ask(ADMIN, "/remove")
    assert empty.visible_text.startswith("Write the source's id after /remove")


def test_feeds_lists_the_feeds(bot):
    api, _, _ = bot
    [reply] = api.ask(ADMIN, "/feeds")
    assert reply.visible_text.splitlines()[:2] == ["1 feed:", f"• {FEED} · not read yet"]
    assert "Not refreshed since the bot started." in reply.visible_text


def test_anyone_else_is_refused_politely_and_nothing_changes(bot, caplog):
    api, engine, news = bot
    caplog.set_level(logging.INFO, logger="bot.telegram.admin")
    rover = str((news / "rover.txt").resolve())
    for command in ("/list", "/sources_list", f"/remove {short_id(rover)}", "/feeds"):
        [reply] = api.ask(STRANGER, command)
        assert reply.visible_text.startswith("Sorry, only the bot's admins can list, remove and add articles")
    assert rover in engine.store.sources()
    assert any(f"for user {STRANGER}: not an admin" in record.getMessage() for record in caplog.records)


def test_pure_renderings_without_sources_or_feeds():
    assert source_lines({}) == ["I have no articles yet: send me a link to one, or /add URL."]
    assert feed_lines([], None) == [NO_FEEDS] and "qabot feeds add URL" in NO_FEEDS
    read = {"https://e.x/a.rss": {"at": "2026-12-05T14:02:09+00:00", "new": 3}}
    lines = feed_lines(["https://e.x/a.rss", "https://e.x/b.rss"], None, read)
    assert lines[1:3] == [
        "• https://e.x/a.rss · read 2026-12-05 14:02 UTC · 3 new articles",
        "• https://e.x/b.rss · not read yet",
    ]
    many = {f"/news/{n}.txt": {"title": f"Story {n}", "published": f"2026-01-{n:02d}"} for n in range(1, 31)}
    lines = source_lines(many)
    assert lines[0] == "The newest 20 of 30 sources (id · title · date):" and len(lines) == 22
    assert lines[1].endswith("Story 30 · 2026-01-30") and Path(lines[20].split(" · ")[1]).name == "Story 11"
