"""The Telegram bot at its edges: a run-on sentence in the index, an /add of a server that trickles its
headers, and a question of only zero-width characters.

The real bot and engine against the stand-in Bot API on 127.0.0.1; the trickling server is the raw
socket server of tests/test_fetch_deadline.py, also on 127.0.0.1.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.telegram.format import telegram_length
from bot.telegram.handlers import APOLOGY, NEEDS_OPERATOR
from bot.words import NO_WORDS
from retrieval.engine import QAEngine
from retrieval.errors import IndexMissingError, InputError, QabotError
from tests.conftest import SEEDS, make_settings
from tests.telegram_standin import SEED_QUESTIONS, ApiCall, BotApiStandIn, WatchedEngine, running_bot
from tests.test_fetch_deadline import HEADERS, TrickleServer

TOKEN = "7000007:edges-SECRET-token"
ADMIN = 881
OTHER_ADMIN = 882
TIMEOUT = 2.0
SLACK = 1.0
MESSAGE_LIMIT = 4096
RUN_ON_WORDS = 30_000
FACT = "the lighthouse keeper of Vrellingham counted forty-two grey gulls on the pier and,"
TITLE = "Harbour diary of Vrellingham"
RUN_ON_QUESTION = "How many grey gulls did the lighthouse keeper of Vrellingham count?"
FETCH = {"allow_private_hosts": True, "timeout_seconds": TIMEOUT}
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def run_on_sentence(words: int) -> str:
    """One sentence of `words` words: clauses joined by "and", commas, never a full stop."""
    rng = random.Random(7)
    subjects = ["the harbour master", "the ferry captain", "a fisherman", "the baker"]
    verbs = ["counted", "watched", "painted", "fed", "named", "followed"]
    objects = ["the grey gulls", "the red boats", "the tide", "the old nets", "the evening lamps", "the herring"]
    out: list[str] = []
    while len(out) < words:
        out.extend(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} and,".split())
    middle = words // 2
    return " ".join([*out[:middle], *FACT.split(), *out[middle : words - len(FACT.split())]])


@pytest.fixture(scope="module")
def trickle() -> Iterator[TrickleServer]:
    """Trickles its headers one byte every 2 s, except at /missing: a 404 at once."""
    with TrickleServer(interval=2.0) as server:
        server.answer = lambda path: (0.0, NOT_FOUND, b"") if path == "/missing" else (0.0, b"", HEADERS)
        yield server


class ErringEngine(WatchedEngine):
    """The real engine; a question in `failures` raises what its function raises instead."""

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self.failures: dict[str, Callable[[], Any]] = {}

    def ask(self, question: str, history: Any = ()) -> Any:
        if question in self.failures:
            return self.failures[question]()
        return super().ask(question, history)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> ErringEngine:
    """The engine over the seed articles and a page of one 30,000-word sentence, fetching with a 2 s deadline."""
    folder = tmp_path_factory.mktemp("edges")
    page = folder / "articles" / "run-on.html"
    page.parent.mkdir()
    body = run_on_sentence(RUN_ON_WORDS)
    page.write_text(f"<html><head><title>{TITLE}</title></head><body><p>{body}</p></body></html>", encoding="utf-8")
    engine = QAEngine(make_settings(folder / "index", fetch=FETCH))
    engine.index_paths([SEEDS, page])
    engine.warm_up()
    return ErringEngine(engine)


@pytest.fixture(scope="module")
def bot(engine: ErringEngine) -> Iterator[BotApiStandIn]:
    index_dir = engine.engine.settings.index.dir

    def settings_for(base_url: str) -> Any:
        telegram = {"base_url": base_url, "admins": [ADMIN, OTHER_ADMIN], "questions_per_minute": 100}
        return make_settings(index_dir, telegram=telegram, fetch=FETCH)

    with running_bot(TOKEN, engine, settings_for) as (api, _):
        yield api


def only_reply(api: BotApiStandIn, chat: int, text: str) -> ApiCall:
    """The one message the bot sends for `text`: a /help sent after it must be the next message."""
    [reply] = api.ask(chat, text)
    api.ask(chat, "/help")
    sent = api.messages(chat)
    assert sent[-2] is reply or sent[-2].result == reply.result
    assert [call.error for call in sent] == [""] * len(sent)
    return reply


def test_an_answer_from_a_run_on_sentence_is_one_message_under_the_limit(bot):
    chat = 1501
    reply = only_reply(bot, chat, RUN_ON_QUESTION)
    assert TITLE in reply.visible_text  # answered from the run-on page
    assert telegram_length(reply.visible_text) <= MESSAGE_LIMIT
    for question in SEED_QUESTIONS[:3]:
        answer = only_reply(bot, chat, question)
        assert telegram_length(answer.visible_text) <= MESSAGE_LIMIT
    assert len(bot.messages(chat)) == 2 * 4  # each question one answer, each /help one reply


def test_an_add_of_a_trickling_server_answers_within_the_deadline_and_frees_the_lock(bot, trickle):
    """The second admin's /add comes while the first one's fetch holds the refresh lock: it waits at
    most until the first one's deadline, so both replies come within the deadline plus a second."""
    started = time.monotonic()
    slow = bot.send_text(ADMIN, f"/add {trickle.url('/slow')}")
    missing = bot.send_text(OTHER_ADMIN, f"/add {trickle.url('/missing')}")
    [failed] = bot.wait_for_replies(ADMIN, slow, timeout=TIMEOUT + SLACK + 1)
    slow_seconds = time.monotonic() - started
    [not_found] = bot.wait_for_replies(OTHER_ADMIN, missing, timeout=TIMEOUT + SLACK + 1)
    missing_seconds = time.monotonic() - started
    assert slow_seconds < TIMEOUT + SLACK, slow_seconds
    assert missing_seconds < TIMEOUT + SLACK, missing_seconds
    assert failed.visible_text.startswith("Sorry, I could not add") and "timed out" in failed.visible_text
    assert "\n" not in failed.visible_text
    assert not_found.visible_text.startswith("Sorry, I could not add") and "HTTP 404" in not_found.visible_text
    assert trickle.trickled >= 1  # the server did trickle


def test_a_question_of_only_zero_width_characters_gets_the_bot_s_own_reply(bot):
    for chat, question in [(1502, "\u200b\u200c\u200d"), (1503, "/ask \u200b\u2060\ufeff"), (1504, "\u00ad\u200e")]:
        reply = only_reply(bot, chat, question)
        assert reply.visible_text == NO_WORDS
        assert "qabot" not in reply.visible_text


def test_engine_errors_meant_for_the_command_line_never_reach_telegram_users(bot, engine, monkeypatch):
    """The engine's errors that name a `qabot` command: the empty question (the engine's own, asked of
    the real engine) gets the bot's one line, the rest an apology; an admin's /add names no command."""
    rebuild = "the index in /srv/index is damaged: rebuild it with `qabot index --rebuild PATH...`"
    empty = "the index in /srv/index is empty: add articles with `qabot index PATH...`"

    def raising(error: QabotError) -> Callable[[], Any]:
        def fail(*_: Any) -> Any:
            raise error

        return fail

    engine.failures.update(
        {
            "Question the engine finds empty?": lambda: engine.engine.ask("\u200b\u200c\u200d"),
            "Question over an empty index?": raising(IndexMissingError(empty, exit_code=2)),
            "Question over a damaged index?": raising(QabotError(rebuild, exit_code=2)),
        }
    )
    with pytest.raises(InputError, match="qabot ask"):
        engine.engine.ask("\u200b\u200c\u200d")  # what the CLI says, and the bot must not
    expected = [NO_WORDS, APOLOGY, APOLOGY]
    for chat, (question, words) in enumerate(zip(engine.failures, expected, strict=True), start=1510):
        reply = only_reply(bot, chat, question)
        assert reply.visible_text == words
    monkeypatch.setattr(engine.engine.web, "index_urls", raising(QabotError(rebuild, exit_code=2)))
    [failed] = bot.ask(ADMIN, "/add https://example.org/news/story")
    assert failed.visible_text == f"Sorry, I could not add https://example.org/news/story: {NEEDS_OPERATOR}."
    for chat in [*range(1510, 1513), ADMIN]:
        assert not any("qabot " in call.visible_text for call in bot.messages(chat))
