"""The Telegram bot under faults: timeouts and bad gateways are ridden out, a revoked token ends it cleanly.

The real bot and engine against the stand-in Bot API on 127.0.0.1, with short client timeouts so
that a stalled request is given up in a second or two.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bot.telegram.app import build_application
from retrieval.errors import QabotError
from tests.conftest import make_settings
from tests.telegram_standin import SEED_QUESTIONS, BotApiStandIn, BotThread, Fault, WatchedEngine, running_bot

TOKEN = "7000005:reliability-SECRET-token"
QUESTIONS = SEED_QUESTIONS[:3]
# Far longer than any wait in these tests: a stalled request is only ever ended by the client's timeout.
STALL_SECONDS = 60.0


def bot_settings(index_dir: Path, data_dir: Path, base_url: str) -> Any:
    telegram = {"base_url": base_url, "request_timeout": 1.0, "questions_per_minute": 100}
    return make_settings(index_dir, data={"dir": data_dir}, telegram=telegram)


def accepted_replies(api: BotApiStandIn, chat: int) -> list[int | None]:
    """The ids of the messages the bot's accepted messages in `chat` reply to, in order."""
    return [call.reply_to for call in api.messages(chat) if not call.error]


def test_timeouts_and_bad_gateways_are_ridden_out_and_every_question_answered_once(
    seed_engine, seed_index_dir, tmp_path
):
    engine = WatchedEngine(seed_engine)
    chats = [301, 302, 303]

    def settings_for(base_url: str) -> Any:
        return bot_settings(seed_index_dir, tmp_path / "data", base_url)

    with running_bot(TOKEN, engine, settings_for, poll_timeout=1) as (api, _):
        polls_before = api.received("getUpdates")
        faults = [
            Fault("getUpdates", 504, "Gateway Timeout", stall=STALL_SECONDS, times=2),
            Fault("sendMessage", 504, "Gateway Timeout", stall=STALL_SECONDS, times=2),
            Fault("sendMessage", 502, "Bad Gateway", times=1),
        ]
        for fault in faults:
            api.inject(fault)
        sent: dict[int, list[dict[str, Any]]] = {chat: [api.send_text(chat, QUESTIONS[0])] for chat in chats}
        # The poll that fetched those ended; the next one stalls. Ask the rest while Telegram hangs.
        api.wait_for(lambda: api.received("getUpdates") >= polls_before + 2, what="a stalled getUpdates")
        for question in QUESTIONS[1:]:
            for chat in chats:
                sent[chat].append(api.send_text(chat, question))

        def all_answered() -> bool:
            return all(len(accepted_replies(api, chat)) >= len(QUESTIONS) for chat in chats)

        api.wait_for(all_answered, timeout=45, what="every question to be answered")
        for chat in chats:  # a duplicate still on its way would arrive before this reply
            api.ask(chat, "/help")
        assert [fault.times for fault in faults] == [0, 0, 0], "every fault was met"
        for chat in chats:
            assert accepted_replies(api, chat)[:-1] == [message["message_id"] for message in sent[chat]]
    asked = engine.questions()
    assert sorted(asked) == sorted(QUESTIONS * len(chats))  # each question asked once, none lost


def test_revoked_token_while_polling_ends_the_bot_with_a_clear_message(seed_engine, seed_index_dir, tmp_path, caplog):
    with BotApiStandIn(TOKEN) as api:
        settings = bot_settings(seed_index_dir, tmp_path / "data", api.base_url)
        with caplog.at_level(logging.DEBUG):
            runner = BotThread(build_application(settings, seed_engine, TOKEN), poll_timeout=1).start()
            try:
                [reply] = api.ask(311, QUESTIONS[0])
                assert "Donald Trump" in reply.visible_text
                api.revoke_token()
                error = runner.join(timeout=30)
            finally:
                runner.stop()
    assert isinstance(error, QabotError) and error.exit_code == 2
    message = str(error)
    assert "401 Unauthorized" in message and "revoked" in message and "TELEGRAM_BOT_TOKEN" in message
    assert "\n" not in message and TOKEN not in message
    assert TOKEN not in caplog.text
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


def test_unauthorized_reply_to_sending_an_answer_ends_the_bot(seed_engine, seed_index_dir, tmp_path):
    """The path a webhook bot takes, where no getUpdates would notice the revoked token."""
    with BotApiStandIn(TOKEN) as api:
        settings = bot_settings(seed_index_dir, tmp_path / "data", api.base_url)
        runner = BotThread(build_application(settings, seed_engine, TOKEN), poll_timeout=1).start()
        try:
            api.wait_for(lambda: api.received("getUpdates"), what="the bot to start")
            api.inject(Fault("sendMessage", 401, "Unauthorized", times=1000))
            api.send_text(312, QUESTIONS[0])
            error = runner.join(timeout=30)
        finally:
            runner.stop()
    assert isinstance(error, QabotError) and error.exit_code == 2 and "401 Unauthorized" in str(error)
