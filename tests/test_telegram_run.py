"""Starting and stopping the Telegram bot: the token, a rejected token, a 409 conflict, webhooks, SIGTERM."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from typing import Any

import pytest

from bot.telegram.app import Webhook, build_application
from retrieval.errors import QabotError
from retrieval.secrets import TokenRedactionFilter, read_token
from tests.conftest import QABOT, make_settings, qabot_bot_env, running_qabot_bot
from tests.telegram_standin import (
    BotApiStandIn,
    BotThread,
    Fault,
    WatchedEngine,
    free_port,
    post_update,
    running_bot,
    wait_listening,
)

TOKEN = "7000003:run-SECRET-token"


def test_missing_token_is_a_one_line_error_naming_the_variable(tmp_path):
    with pytest.raises(QabotError) as caught:
        read_token(make_settings(tmp_path / "index"), environ={})
    assert caught.value.exit_code == 2
    assert "TELEGRAM_BOT_TOKEN" in str(caught.value) and "\n" not in str(caught.value)


def test_token_comes_from_the_environment_first(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    token_file.chmod(0o600)
    settings = make_settings(tmp_path / "index", telegram={"token_file": token_file})
    assert read_token(settings, environ={"TELEGRAM_BOT_TOKEN": " from-env "}) == "from-env"
    assert read_token(settings, environ={}) == "from-file"


def test_token_file_readable_by_others_is_warned_about(tmp_path, caplog):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    settings = make_settings(tmp_path / "index", telegram={"token_file": token_file})
    token_file.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        read_token(settings, environ={})
    assert "chmod 600" not in caplog.text
    token_file.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert read_token(settings, environ={}) == TOKEN
    assert f"chmod 600 {token_file}" in caplog.text
    assert TOKEN not in caplog.text


def test_missing_token_file_is_an_error_without_its_content(tmp_path):
    settings = make_settings(tmp_path / "index", telegram={"token_file": tmp_path / "nowhere"})
    with pytest.raises(QabotError, match="cannot read the Telegram token file") as caught:
        read_token(settings, environ={})
    assert caught.value.exit_code == 2


def test_redaction_filter_cleans_messages_arguments_and_tracebacks():
    redaction = TokenRedactionFilter(["123:abc"])
    try:
        raise ValueError("the token `123:abc` was rejected")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", ("/bot123:abc/getMe",), sys.exc_info())
    assert redaction.filter(record)
    formatted = logging.Formatter().format(record)
    assert "123:abc" not in formatted
    assert "url /bot[REDACTED]/getMe" in formatted and "ValueError: the token `[REDACTED]`" in formatted


def test_rejected_token_stops_the_bot_with_a_clear_message(seed_engine, tmp_path, caplog):
    with BotApiStandIn("7000004:the-right-token") as api:
        settings = make_settings(tmp_path / "index", telegram={"base_url": api.base_url})
        with caplog.at_level(logging.DEBUG):
            error = BotThread(build_application(settings, seed_engine, TOKEN)).start().join()
    assert isinstance(error, QabotError) and error.exit_code == 2
    assert "401 Unauthorized" in str(error) and "TELEGRAM_BOT_TOKEN" in str(error)
    assert TOKEN not in str(error) and TOKEN not in caplog.text
    assert api.calls() == [] and not api.refused()  # refused for the wrong token before any method ran


def test_conflict_with_another_instance_ends_the_bot(seed_engine, tmp_path, caplog):
    conflict = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
    with BotApiStandIn(TOKEN) as api:
        api.inject(Fault("getUpdates", 409, conflict, times=1000))
        settings = make_settings(tmp_path / "index", telegram={"base_url": api.base_url})
        with caplog.at_level(logging.WARNING):
            error = BotThread(build_application(settings, seed_engine, TOKEN)).start().join()
    assert isinstance(error, QabotError)
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert "409 Conflict" in str(error) and "another bot instance" in str(error)
    assert "\n" not in str(error) and TOKEN not in str(error)


def test_webhook_mode_registers_the_webhook_and_answers_posted_updates(seed_engine, seed_index_dir, tmp_path):
    port = free_port()
    webhook = Webhook(url=f"http://127.0.0.1:{port}/qabot-hook", listen="127.0.0.1", port=port, secret="hook-secret")

    def settings_for(base_url: str) -> Any:
        return make_settings(seed_index_dir, data={"dir": tmp_path / "data"}, telegram={"base_url": base_url})

    with running_bot(TOKEN, WatchedEngine(seed_engine), settings_for, webhook=webhook) as (api, _):
        [registered] = api.calls("setWebhook")
        assert registered.params["url"] == webhook.url
        assert registered.params["secret_token"] == "hook-secret"
        assert api.calls("getUpdates") == []
        wait_listening(port)
        forged = api.message(77, text="Who declared the talks dead?")
        assert post_update(webhook.url, {"update_id": 1, "message": forged}, "wrong-secret") == 403
        question = api.message(77, text="Who declared the talks dead?")
        assert post_update(webhook.url, {"update_id": 2, "message": question}, "hook-secret") == 200
        [reply] = api.wait_for_replies(77, question)
        assert "Donald Trump" in reply.visible_text
        assert all(call.reply_to != forged["message_id"] for call in api.messages(77))


def test_qabot_bot_without_a_token_exits_2_naming_the_variable(seed_index_dir, tmp_path):
    with BotApiStandIn(TOKEN) as api:
        env = qabot_bot_env(api, seed_index_dir, tmp_path / "data", token=None)
        done = subprocess.run([str(QABOT), "bot"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_qabot_bot_answers_then_stops_cleanly_on_sigterm(seed_index_dir, tmp_path):
    with BotApiStandIn(TOKEN) as api:
        env = qabot_bot_env(api, seed_index_dir, tmp_path / "data", token=TOKEN)
        with running_qabot_bot(api, env, started="getUpdates") as bot:
            question = api.send_text(55, "Who declared the talks dead?")
            [reply] = api.wait_for_replies(55, question)
            assert "Donald Trump" in reply.visible_text
            bot.send_signal(signal.SIGTERM)
            _, stderr = bot.communicate(timeout=60)
    assert bot.returncode == 0, stderr
    assert "Telegram bot stopped" in stderr
    assert "Traceback" not in stderr and TOKEN not in stderr
    # The last getUpdates confirmed every update fetched, so a restart would not answer it again.
    assert api.calls("getUpdates")[-1].params["offset"] > api.update_id(question)


@pytest.fixture()
def fresh_bot(seed_engine, seed_index_dir, tmp_path):
    """A bot of its own, so that injected faults touch no other test."""

    def settings_for(base_url: str) -> Any:
        return make_settings(seed_index_dir, data={"dir": tmp_path / "data"}, telegram={"base_url": base_url})

    with running_bot(TOKEN, WatchedEngine(seed_engine), settings_for) as (api, _):
        yield api


def test_bot_keeps_polling_through_bad_gateway_errors(fresh_bot):
    api = fresh_bot
    api.inject(Fault("getUpdates", 502, "Bad Gateway", times=2))
    api.ask(91, "/help")  # ends the long poll already waiting, so the next polls meet the faults
    api.wait_for(lambda: len([call for call in api.refused() if call.method == "getUpdates"]) == 2)
    [reply] = api.ask(91, "Who declared the talks dead?")
    assert "Donald Trump" in reply.visible_text


def test_too_many_requests_is_waited_out_and_retried(fresh_bot):
    api = fresh_bot
    api.inject(Fault("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1))
    question = api.send_text(92, "Who declared the talks dead?")
    replies = api.wait_for_replies(92, question, count=2)
    assert [reply.error for reply in replies] == ["Too Many Requests: retry after 1", ""]
    assert "Donald Trump" in replies[1].visible_text
