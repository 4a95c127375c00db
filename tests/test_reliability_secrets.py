"""The bot token stays secret: not in error messages, logs, messages sent to users, or `--json` output."""

from __future__ import annotations

import json
import logging
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

import bot.telegram.app
from bot.cli import main
from bot.telegram.app import build_application
from retrieval.errors import QabotError
from retrieval.secrets import REDACTED
from tests.conftest import MISSING_READER, SEED_ARTICLE, make_settings
from tests.telegram_standin import BotThread, WatchedEngine, running_bot

TOKEN = "7000006:secrets-SECRET-token"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_bot_api_is_named_without_the_token(seed_engine, tmp_path, caplog):
    base_url = f"http://127.0.0.1:{_closed_port()}/bot"
    settings = make_settings(tmp_path / "index", telegram={"base_url": base_url})
    with caplog.at_level(logging.DEBUG):
        error = BotThread(build_application(settings, seed_engine, TOKEN)).start().join()
    assert isinstance(error, QabotError)
    assert f"cannot reach the Telegram Bot API at {base_url}" in str(error)
    assert TOKEN not in str(error) and TOKEN not in caplog.text


class TokenQuotingEngine(WatchedEngine):
    """An engine whose failure message quotes the token, as a library's error about a URL might."""

    def ask(self, question: str, history: Any = ()) -> Any:
        raise RuntimeError(f"request to https://api.telegram.org/bot{TOKEN}/getFile failed")


def test_an_error_quoting_the_token_is_redacted_in_the_log_and_never_sent(
    seed_engine, seed_index_dir, tmp_path, caplog
):
    def settings_for(base_url: str) -> Any:
        return make_settings(seed_index_dir, data={"dir": tmp_path / "data"}, telegram={"base_url": base_url})

    with caplog.at_level(logging.DEBUG), running_bot(TOKEN, TokenQuotingEngine(seed_engine), settings_for) as (api, _):
        api.send_text(401, "Who declared the talks dead?")
        [apology] = api.wait_for(lambda: api.messages(401), what="an apology")
        api.wait_for(lambda: "getFile failed" in caplog.text, what="the error to be logged")
    assert "Sorry, something went wrong" in apology.visible_text
    assert all(TOKEN not in json.dumps(call.params) for call in api.calls())
    assert f"bot{REDACTED}/getFile failed" in caplog.text
    assert TOKEN not in caplog.text


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`qabot ARGS...` in this process (faster than a subprocess): (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["qabot", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    out, err = capsys.readouterr()
    return ended.value.code or 0, out, err


@pytest.fixture()
def user_with_a_token(monkeypatch, tmp_path, seed_index_dir) -> Path:
    """A user's environment with the token set both ways; returns their data folder."""
    token_file = tmp_path / "telegram-token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    for name, value in {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "QABOT_TELEGRAM_TOKEN_FILE": str(token_file),
        "QABOT_INDEX_DIR": str(seed_index_dir),
        "QABOT_MODELS_READER": MISSING_READER,
        "QABOT_DATA_DIR": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "data"


def test_json_output_and_errors_of_every_command_hold_no_token(user_with_a_token, monkeypatch, capsys, tmp_path):
    runs = {
        "ask": run_main(monkeypatch, capsys, "ask", "--json", "Who declared the talks dead?"),
        "models": run_main(monkeypatch, capsys, "models", "list", "--json"),
        "index": run_main(monkeypatch, capsys, "index", "--json", "--index", str(tmp_path / "i"), str(SEED_ARTICLE)),
        "error": run_main(monkeypatch, capsys, "ask", "--json", "--index", str(tmp_path / "nowhere"), "Who?"),
    }
    for name in ("ask", "models", "index"):
        code, out, _ = runs[name]
        assert code == 0 and json.loads(out), name
    assert runs["error"][0] == 2 and "qabot index" in runs["error"][2]
    for name, (_, out, err) in runs.items():
        assert TOKEN not in out + err, name


def test_unexpected_failure_of_the_bot_is_one_line_without_the_token(user_with_a_token, monkeypatch, capsys, caplog):
    def failing_run_bot(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")

    monkeypatch.setattr(bot.telegram.app, "run_bot", failing_run_bot)
    with caplog.at_level(logging.INFO):
        code, out, err = run_main(monkeypatch, capsys, "bot")
    assert code == 1
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "unexpected RuntimeError" in line and f"`{REDACTED}` was rejected" in line
    assert TOKEN not in out + err + caplog.text
    assert "Traceback" in caplog.text  # kept for the operator, in the log, with the token cut out
