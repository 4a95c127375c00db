"""The Telegram bot against hostile or broken input: webhook floods, malformed updates, odd buttons, floods.

The real bot and engine against the stand-in Bot API on 127.0.0.1; webhook tests POST to the bot's
real webhook server on 127.0.0.1, one of them to `qabot bot` in a subprocess whose memory is watched.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from bot.telegram.handlers import CANNOT_RATE, MESSAGES_PER_QUESTION, UNKNOWN_BUTTON
from bot.telegram.webhook import MAX_CONNECTIONS, MAX_UPDATE_BYTES, Webhook
from tests.conftest import make_settings, qabot_bot_env, running_qabot_bot
from tests.telegram_standin import (
    BotApiStandIn,
    Fault,
    LogCapture,
    WatchedEngine,
    capturing_logs,
    free_port,
    post_update,
    running_bot,
    wait_listening,
)

TOKEN = "7000006:hostile-SECRET-token"
SECRET = "hook-secret"
QUESTION = "Who declared the talks dead?"
# Put into every malformed update: it must never appear in the log.
CONTENT = "PRIVATE-CONTENT"
PER_MINUTE = 10
UPDATES_LOGGER = "bot.telegram.updates"


@pytest.fixture()
def logs() -> Iterator[LogCapture]:
    with capturing_logs() as capture:
        yield capture


def start_bot(seed_engine: Any, seed_index_dir: Path, data_dir: Path, **serve_options: Any) -> Any:
    def settings_for(base_url: str) -> Any:
        telegram = {"base_url": base_url, "questions_per_minute": PER_MINUTE}
        return make_settings(seed_index_dir, data={"dir": data_dir}, telegram=telegram)

    return running_bot(TOKEN, WatchedEngine(seed_engine), settings_for, **serve_options)


@pytest.fixture()
def bot(seed_engine, seed_index_dir, tmp_path, logs) -> Iterator[BotApiStandIn]:
    """A polling bot of its own, so that malformed updates and faults touch no other test."""
    with start_bot(seed_engine, seed_index_dir, tmp_path / "data", poll_timeout=1) as (api, _):
        yield api


@pytest.fixture()
def webhook_bot(seed_engine, seed_index_dir, tmp_path, logs) -> Iterator[tuple[BotApiStandIn, Webhook]]:
    port = free_port()
    webhook = Webhook(url=f"http://127.0.0.1:{port}/telegram", listen="127.0.0.1", port=port, secret=SECRET)
    with start_bot(seed_engine, seed_index_dir, tmp_path / "data", webhook=webhook) as (api, _):
        wait_listening(port)
        yield api, webhook


def skipped(logs: LogCapture) -> list[str]:
    return [record.getMessage() for record in logs.records if record.name == UPDATES_LOGGER]


def assert_quiet(logs: LogCapture) -> None:
    """No error, no traceback, and no content of a malformed update in the log."""
    assert logs.at_least(logging.ERROR) == []
    assert "Traceback" not in logs.text and CONTENT not in logs.text


def malformed_updates(api: BotApiStandIn, chat: int) -> list[Any]:
    """One of each kind of update PTB cannot parse, or that would break a handler (functions of the id)."""
    valid = api.message(chat, text=CONTENT)
    no_date = {key: value for key, value in valid.items() if key != "date"}
    return [
        lambda update_id: {"update_id": update_id, "message": no_date},  # a required field missing
        lambda update_id: {"update_id": update_id, "message": {**valid, "text": 5}},  # wrong types
        lambda update_id: {"update_id": update_id, "message": {**valid, "chat": {"id": CONTENT, "type": "private"}}},
        lambda update_id: {"update_id": update_id, "message": CONTENT},
        lambda update_id: {"update_id": update_id, "message": {**valid, "entities": [{"offset": CONTENT}]}},
        f"garbage {CONTENT}",  # not an update at all
        [CONTENT, 42],
        None,
        {"message": valid},  # no update_id
        {"update_id": f"{CONTENT}", "message": valid},
    ]


def test_malformed_updates_are_logged_once_by_id_skipped_and_the_next_question_answered(bot, logs):
    api = bot
    chat = 6001
    polls_before = api.received("getUpdates")
    entries = malformed_updates(api, chat)
    ids = [api.push_raw(entry) for entry in entries]
    [reply] = api.wait_for_replies(chat, api.send_text(chat, QUESTION))
    assert "Donald Trump" in reply.visible_text
    # Each poll confirms at least one entry, or pauses: never a re-fetch in a loop.
    polls = api.received("getUpdates") - polls_before
    print(f"\n{len(entries)} malformed updates and a question: {polls} getUpdates calls")
    assert polls <= len(entries) + 3
    lines = skipped(logs)
    assert len(lines) == len(entries)
    with_ids = [line for line in lines if line.startswith("Skipped update ")]
    assert [int(line.split()[2].rstrip(":")) for line in with_ids] == ids[:5]
    assert api.messages(chat) == [reply]  # nothing answered the malformed ones
    assert_quiet(logs)


def test_getupdates_answering_only_garbage_is_polled_with_growing_pauses(bot, logs):
    api = bot
    api.push_raw(f"garbage {CONTENT}")
    polls_before = api.received("getUpdates")
    time.sleep(4)
    # Pauses of 1, 1.5, 2.25 s ... between polls: a handful in 4 s, where re-polling at once made thousands.
    polls = api.received("getUpdates") - polls_before
    print(f"\ngetUpdates answering only garbage: {polls} calls in 4 s")
    assert polls <= 6
    [reply] = api.wait_for_replies(6002, api.send_text(6002, QUESTION))
    assert "Donald Trump" in reply.visible_text
    assert skipped(logs) == ["Skipped an update without a valid update_id"]
    assert_quiet(logs)


@pytest.mark.parametrize(
    "answer",
    [{"ok": True, "result": {"update_id": 1}}, {"ok": True}, {"ok": False}, f"not an answer {CONTENT}"],
    ids=["result-not-a-list", "no-result", "not-ok", "not-an-object"],
)
def test_a_malformed_getupdates_answer_is_retried_with_pauses_and_logged_once(bot, logs, answer):
    api = bot
    fault = Fault("getUpdates", payload=answer, times=3)
    api.inject(fault)
    api.wait_for(lambda: fault.times == 0, timeout=30, what="three malformed answers")
    [reply] = api.wait_for_replies(6003, api.send_text(6003, QUESTION), timeout=30)
    assert "Donald Trump" in reply.visible_text
    assert skipped(logs) == ["The Bot API's answer to getUpdates is not a list of updates"]
    assert_quiet(logs)


def test_malformed_posted_updates_are_acknowledged_logged_once_and_the_bot_goes_on(webhook_bot, logs):
    api, webhook = webhook_bot
    chat = 6101
    entries = [
        entry(9000 + number) if callable(entry) else entry for number, entry in enumerate(malformed_updates(api, chat))
    ]
    for entry in entries:
        # 200, as for any update: Telegram would otherwise deliver a bad update again and again.
        assert post_update(webhook.url, entry, SECRET) == 200
    assert post_update(webhook.url, None, SECRET, body=f"{{not json {CONTENT}".encode()) == 200
    assert post_update(webhook.url, entries[0], SECRET) == 200  # delivered again: not logged again
    question = api.message(chat, text=QUESTION)
    assert post_update(webhook.url, {"update_id": 9100, "message": question}, SECRET) == 200
    [reply] = api.wait_for_replies(chat, question)
    assert "Donald Trump" in reply.visible_text
    lines = skipped(logs)
    assert len(lines) == len(entries)  # unreadable JSON reads as null, like the null entry: logged once
    assert sum(line.startswith("Skipped update 9000:") for line in lines) == 1
    assert_quiet(logs)


def test_a_button_under_an_inline_message_is_answered_without_a_traceback(bot, logs):
    api = bot
    query = {
        "id": "inline-press",
        "from": api.user(6201),
        "chat_instance": "inline-chat",
        "inline_message_id": "inline-message",
        "data": "fb:1:up",
    }
    api.push_update({"callback_query": query})
    answered = api.wait_for(lambda: api.calls("answerCallbackQuery"), what="the press to be answered")
    assert [(call.params["callback_query_id"], call.params["text"]) for call in answered] == [
        ("inline-press", CANNOT_RATE)
    ]
    assert_quiet(logs)


def test_every_button_press_is_answered_whatever_its_data(bot, logs):
    api = bot
    [message] = api.ask(6301, "/help")
    presses = [api.press(message, data, user_id=6301) for data in ("garbage", "fb:x:up", "fb:1:sideways", "🙂" * 30)]
    game = {"id": "game-press", "from": api.user(6301), "chat_instance": "c", "game_short_name": "g"}
    presses.append(api.push_update({"callback_query": {**game, "message": message.result}}))

    def answers() -> list[Any]:
        calls = api.calls("answerCallbackQuery")
        return calls if len(calls) >= len(presses) else []

    answered = api.wait_for(answers, what="every press to be answered")
    assert [call.params["text"] for call in answered] == [UNKNOWN_BUTTON] * len(presses)
    assert_quiet(logs)


def test_a_flood_of_questions_gets_its_answers_and_one_too_fast_reply(bot, logs):
    api = bot
    chat = 6401
    flood = [api.send_text(chat, f"{QUESTION} ({number})") for number in range(300)]
    replies = api.wait_for(lambda: len(api.messages(chat)) >= PER_MINUTE + 1 and api.messages(chat), timeout=60)
    # A button press queues behind the flood in this chat: once it is answered, all 300 were handled.
    api.press(replies[0], "end-of-flood", user_id=chat)
    api.wait_for(lambda: api.calls("answerCallbackQuery"), timeout=60, what="the flood to be handled")
    texts = [reply.visible_text for reply in api.messages(chat)]
    too_fast = [text for text in texts if "faster than I can answer" in text]
    assert len(too_fast) == 1 and len(texts) == PER_MINUTE + 1
    assert [reply.reply_to for reply in api.messages(chat)][:PER_MINUTE] == [
        m["message_id"] for m in flood[:PER_MINUTE]
    ]
    assert "asking too fast" in logs.text  # the rest are ignored quietly, at debug level
    assert_quiet(logs)


def test_a_flood_of_commands_and_stickers_gets_the_message_budget_of_replies_and_one_notice(bot, logs):
    api = bot
    chat = 6402
    for number in range(100):
        if number % 2:
            api.send_text(chat, "/help")
        else:
            api.send_sticker(chat)
    budget = MESSAGES_PER_QUESTION * PER_MINUTE
    replies = api.wait_for(lambda: len(api.messages(chat)) >= budget and api.messages(chat), timeout=60)
    api.press(replies[0], "end-of-flood", user_id=chat)
    api.wait_for(lambda: api.calls("answerCallbackQuery"), timeout=60, what="the flood to be handled")
    replies = api.messages(chat)
    assert len(replies) == budget + 1  # and one notice of the cool-down
    assert "Please try again in" in replies[-1].visible_text
    assert_quiet(logs)


def test_the_webhook_refuses_excess_connections_and_unread_bodies_and_goes_on(webhook_bot, logs):
    api, webhook = webhook_bot
    # Connections beyond the limit are closed at once; the others stay open. (One slot may still be
    # taken by the probe that waited for the server to listen, until the server sees it closed.)
    held = [socket.create_connection(("127.0.0.1", webhook.port), timeout=20) for _ in range(MAX_CONNECTIONS + 5)]
    try:
        still_open = len(held) - len(_wait_closed(held, 5))
        assert MAX_CONNECTIONS - 1 <= still_open <= MAX_CONNECTIONS
    finally:
        for client in held:
            client.close()
    _wait_served(webhook.port)
    # Judged on the headers alone: no secret, a wrong one, or (even with the secret) too long a body.
    assert _status_of_post(webhook.port, None, content_length=100_000_000) == 403
    assert _status_of_post(webhook.port, "wrong-secret", content_length=100) == 403
    assert _status_of_post(webhook.port, SECRET, content_length=100_000_000) == 413
    # A chunked body announces no length: it is cut off at the cap, never read whole.
    assert not _post_chunked(webhook.port, SECRET, 4 * MAX_UPDATE_BYTES).startswith(b"HTTP/1.1 200")
    question = api.message(6501, text=QUESTION)
    assert post_update(webhook.url, {"update_id": 1, "message": question}, SECRET) == 200
    [reply] = api.wait_for_replies(6501, question)
    assert "Donald Trump" in reply.visible_text
    assert skipped(logs) == []
    assert_quiet(logs)


def test_twenty_unauthenticated_100_mb_posts_leave_the_bot_process_small(seed_index_dir, tmp_path):
    port = free_port()
    with BotApiStandIn(TOKEN) as api:
        env = qabot_bot_env(api, seed_index_dir, tmp_path / "data", token=TOKEN)
        url = f"http://127.0.0.1:{port}/telegram"
        webhook_args = ("--webhook-url", url, "--listen", "127.0.0.1", "--port", str(port))
        with running_qabot_bot(api, env, *webhook_args, started="setWebhook") as bot:
            secret = api.calls("setWebhook")[0].params["secret_token"]
            wait_listening(port)
            process = psutil.Process(bot.pid)
            _ask_through_webhook(api, url, secret, 6601)  # everything a question needs is loaded
            before = process.memory_info().rss
            peak = _peak_rss_while(process, lambda: _flood(port, clients=20, body_bytes=100_000_000))
            growth_mb = (peak - before) / 2**20
            print(f"\nwebhook bot RSS: {before / 2**20:.0f} MB before, peak growth {growth_mb:.1f} MB")
            assert growth_mb < 50
            _ask_through_webhook(api, url, secret, 6602)
            bot.terminate()
            _, stderr = bot.communicate(timeout=60)
    assert bot.returncode == 0, stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr and TOKEN not in stderr
    assert "Malformed HTTP message" not in stderr  # no log line per refused request


def _ask_through_webhook(api: BotApiStandIn, url: str, secret: str, chat: int) -> None:
    question = api.message(chat, text=QUESTION)
    assert post_update(url, {"update_id": chat, "message": question}, secret) == 200
    [reply] = api.wait_for_replies(chat, question, timeout=60)
    assert "Donald Trump" in reply.visible_text


def _send_headers(client: socket.socket, secret: str | None, length_header: str) -> None:
    lines = ["POST /telegram HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", length_header]
    if secret is not None:
        lines.append(f"X-Telegram-Bot-Api-Secret-Token: {secret}")
    client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def _status_of_post(port: int, secret: str | None, content_length: int) -> int:
    """The status answered to a POST's headers (the body is never sent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as client:
        _send_headers(client, secret, f"Content-Length: {content_length}")
        return int(client.recv(1024).split(b" ", 2)[1])


def _wait_served(port: int, timeout: float = 20.0) -> None:
    """Waits until the server has seen closed connections go and serves a new one again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _status_of_post(port, None, content_length=0)
            return
        except (OSError, IndexError):
            if time.monotonic() > deadline:
                raise AssertionError(f"the webhook on port {port} serves no new connection") from None
            time.sleep(0.05)


def _post_chunked(port: int, secret: str, body_bytes: int) -> bytes:
    """Streams a chunked body of `body_bytes`; returns the server's answer (b"" when it hung up)."""
    block = 64 * 1024
    chunk = b"%x\r\n%s\r\n" % (block, b"x" * block)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as client:
        _send_headers(client, secret, "Transfer-Encoding: chunked")
        try:
            for _ in range(body_bytes // block):
                client.sendall(chunk)
            client.sendall(b"0\r\n\r\n")
            return client.recv(1024)
        except OSError:
            return b""


def _flood(port: int, clients: int, body_bytes: int) -> None:
    """`clients` POSTs at once without the secret, each streaming `body_bytes` until the server hangs up."""
    chunk = b"x" * (1 << 20)

    def post() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
            _send_headers(client, None, f"Content-Length: {body_bytes}")
            try:
                for _ in range(body_bytes // len(chunk)):
                    client.sendall(chunk)
            except OSError:
                return  # closed early: the server would not read it

    threads = [threading.Thread(target=post) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)


def _peak_rss_while(process: psutil.Process, action: Any) -> int:
    """The highest resident memory of `process` seen while `action()` runs."""
    peak = [process.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        action()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], process.memory_info().rss)


def _wait_closed(clients: list[socket.socket], count: int, timeout: float = 20.0) -> list[socket.socket]:
    """Waits until `count` of `clients` were closed by the server, and a little more; returns the closed ones."""
    deadline = time.monotonic() + timeout
    closed: list[socket.socket] = []
    settle_until = None
    while time.monotonic() < deadline and (settle_until is None or time.monotonic() < settle_until):
        for client in clients:
            if client in closed:
                continue
            client.setblocking(False)
            try:
                if client.recv(1) == b"":
                    closed.append(client)
            except BlockingIOError:
                pass
            except OSError:
                closed.append(client)
            client.setblocking(True)
        if len(closed) >= count and settle_until is None:
            settle_until = time.monotonic() + 0.5  # any further closing would show by then
        time.sleep(0.02)
    return closed
