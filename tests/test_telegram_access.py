"""Who may use the Telegram bot and how often: the allowlist and the per-user rate limit, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.telegram.access import RateLimit
from retrieval.settings import Settings
from tests.conftest import make_settings
from tests.telegram_standin import WatchedEngine, running_bot

TOKEN = "7000002:access-SECRET-token"
ALLOWED_USER, LIMITED_USER, STRANGER = 111, 333, 222
ALLOWED_GROUP = -5000
PER_MINUTE = 2


@pytest.fixture(scope="module")
def bot(seed_engine: Any, seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """(stand-in API, watched engine) of a bot with an allowlist and 2 questions a minute."""
    data = tmp_path_factory.mktemp("telegram-access") / "data"
    engine = WatchedEngine(seed_engine)

    def settings_for(base_url: str) -> Settings:
        telegram = {
            "base_url": base_url,
            "allowlist": [ALLOWED_USER, LIMITED_USER, ALLOWED_GROUP],
            "questions_per_minute": PER_MINUTE,
        }
        return make_settings(seed_index_dir, data={"dir": data}, telegram=telegram)

    with running_bot(TOKEN, engine, settings_for) as (api, _):
        yield api, engine


def test_user_outside_the_allowlist_is_refused_politely(bot):
    api, engine = bot
    question = "Who declared the talks dead? (stranger)"
    [reply] = api.ask(STRANGER, question)
    assert "Sorry" in reply.visible_text and str(STRANGER) in reply.visible_text
    assert not reply.buttons
    assert question not in engine.questions()
    [start] = api.ask(STRANGER, "/start")
    assert "Sorry" in start.visible_text and "Hi" not in start.visible_text


def test_allowlisted_user_is_answered(bot):
    api, _ = bot
    [reply] = api.ask(ALLOWED_USER, "Who declared the talks dead?")
    assert "Donald Trump" in reply.visible_text


def test_allowlisted_group_is_answered_for_any_member(bot):
    api, _ = bot
    [reply] = api.ask(ALLOWED_GROUP, "@qabot_test_bot Who declared the talks dead?", user_id=STRANGER)
    assert "Donald Trump" in reply.visible_text


def test_questions_beyond_the_rate_limit_get_a_polite_wait_message(bot):
    api, engine = bot
    questions = [f"Who declared the talks dead? ({number})" for number in range(PER_MINUTE + 1)]
    replies = [api.ask(LIMITED_USER, question)[0] for question in questions]
    assert all("Donald Trump" in reply.visible_text for reply in replies[:PER_MINUTE])
    assert f"at most {PER_MINUTE} questions a minute" in replies[-1].visible_text
    assert questions[-1] not in engine.questions()
    # Commands other than questions are not limited.
    [help_reply] = api.ask(LIMITED_USER, "/help")
    assert "/ask" in help_reply.visible_text


def test_rate_limit_counts_a_sliding_minute_per_user():
    now = [1000.0]
    limit = RateLimit(2, clock=lambda: now[0])
    assert limit.wait_seconds(1) == 0 and limit.wait_seconds(1) == 0
    assert limit.wait_seconds(1) == pytest.approx(60)
    assert limit.wait_seconds(2) == 0  # another user is not affected
    now[0] += 30
    assert limit.wait_seconds(1) == pytest.approx(30)
    now[0] += 30
    assert limit.wait_seconds(1) == 0
