"""Conversation as people have it, against the real bot and engine: never silent, greetings free of
the question allowance, /sources, /about, /help, the command menu, the article button, bad input."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.telegram.feedback import READ_THE_ARTICLE
from bot.telegram.format import COMMANDS
from bot.telegram.handlers import MESSAGES_PER_QUESTION
from retrieval.answering.answer import Answer, Turn
from tests.conftest import make_settings
from tests.telegram_standin import WatchedEngine, running_bot

TOKEN = "7000009:conversation-SECRET-token"
PER_MINUTE = 4
QUESTION = "Who declared the talks dead?"
GREETING = "hello"
WEB_QUESTION = "Who declared the talks dead, on the web?"
WEB_URL = "https://news.example/pompeo-talks"

_chat_ids = itertools.count(7001)


class GreetingEngine(WatchedEngine):
    """The real engine, but "hello" gets the engine's own reply (kind "reply"), as small talk does,
    and one question is answered as if from a web article."""

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        if question == GREETING:
            self.asked.append((question, tuple(history)))
            return Answer(question, "Hello! Ask me about the news.", 0.0, "reply")
        if question == WEB_QUESTION:
            answer = super().ask(QUESTION, history)
            return dataclasses.replace(answer, url=WEB_URL, confidence="sure")
        return super().ask(question, history)


@pytest.fixture(scope="module")
def bot(seed_engine: Any, seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("conversation") / "data"
    engine = GreetingEngine(seed_engine)

    def settings_for(base_url: str) -> Any:
        telegram = {"base_url": base_url, "questions_per_minute": PER_MINUTE}
        return make_settings(seed_index_dir, data={"dir": data}, telegram=telegram)

    with running_bot(TOKEN, engine, settings_for) as (api, _):
        yield api, engine


def _flush(api: Any, chat: int) -> None:
    """Waits until every update sent to `chat` so far was handled (a button press queues behind them)."""
    presses = len(api.calls("answerCallbackQuery"))
    api.press(api.messages(chat)[0], "end-of-flood", user_id=chat)
    api.wait_for(lambda: len(api.calls("answerCallbackQuery")) > presses, timeout=120, what="the chat's updates")


def test_greetings_do_not_use_up_the_questions(bot):
    api, _ = bot
    chat = next(_chat_ids)
    greetings = [api.ask(chat, GREETING)[0] for _ in range(PER_MINUTE + 2)]
    assert all("Hello!" in reply.visible_text for reply in greetings)
    [answer] = api.ask(chat, f"/ask {QUESTION}")
    assert "Donald Trump" in answer.visible_text


def test_questions_over_the_limit_get_one_notice_and_commands_still_answer(bot):
    api, engine = bot
    chat = next(_chat_ids)
    replies = [api.ask(chat, f"{QUESTION} ({number})")[0] for number in range(PER_MINUTE + 1)]
    assert all("Donald Trump" in reply.visible_text for reply in replies[:PER_MINUTE])
    assert "Please try again in" in replies[-1].visible_text and "second" in replies[-1].visible_text
    sent = api.send_text(chat, f"{QUESTION} (again)")
    [help_reply] = api.ask(chat, "/help")  # handled after the question: nothing came in between
    assert "/about" in help_reply.visible_text
    assert not [call for call in api.messages(chat) if call.reply_to == sent["message_id"]]
    assert f"{QUESTION} (again)" not in engine.questions()  # told once in the cool-down, then quiet


def test_a_flood_of_greetings_gets_the_message_budget_and_one_notice(bot):
    api, _ = bot
    chat = next(_chat_ids)
    for _ in range(100):
        api.send_text(chat, GREETING)
    budget = MESSAGES_PER_QUESTION * PER_MINUTE
    api.wait_for(lambda: len(api.messages(chat)) > budget, timeout=120, what="the flood's replies")
    _flush(api, chat)
    texts = [reply.visible_text for reply in api.messages(chat)]
    assert len(texts) == budget + 1
    assert texts[:budget] == ["Hello! Ask me about the news."] * budget
    assert "faster than I can read them" in texts[-1] and "try again in" in texts[-1]


def test_sources_show_the_article_without_scores_or_file_names(bot):
    api, _ = bot
    chat = next(_chat_ids)
    [before] = api.ask(chat, "/sources")
    assert "Ask a question first" in before.visible_text
    api.ask(chat, QUESTION)
    [sources] = api.ask(chat, "/sources")
    text = sources.visible_text
    assert "Mike Pompeo hails important breakthrough in US-Taliban talks" in text
    assert "score" not in text and ".txt" not in text and "000_" not in text
    assert len(text.splitlines()) <= 4
    api.ask(chat, GREETING)
    [own] = api.ask(chat, "/sources")
    assert "my own words" in own.visible_text


def test_sources_after_i_dont_know_say_what_was_looked_at(bot):
    api, _ = bot
    chat = next(_chat_ids)
    [reply] = api.ask(chat, "What is the capital of Mongolia's zebra crossings?")
    assert "I don't know" in reply.visible_text
    [sources] = api.ask(chat, "/sources")
    assert sources.visible_text.startswith("I looked at 1 article: “Mike Pompeo hails")
    assert "\n" not in sources.visible_text


def test_answer_from_a_web_article_has_a_read_the_article_button(bot):
    api, _ = bot
    chat = next(_chat_ids)
    [web] = api.ask(chat, WEB_QUESTION)
    rows = web.params["reply_markup"]["inline_keyboard"]
    assert [button["text"] for button in rows[0]] == ["👍", "👎"]
    assert rows[1] == [{"text": READ_THE_ARTICLE, "url": WEB_URL}]
    [file_answer] = api.ask(chat, QUESTION)
    assert [button["text"] for button in file_answer.buttons] == ["👍", "👎"]


def test_about_tells_what_the_bot_has_read(bot):
    api, _ = bot
    [about] = api.ask(next(_chat_ids), "/about")
    text = about.visible_text
    assert "I have read 1 article: 1 file and 0 from the web (0 feeds)." in text
    assert "qabot-tests/no-such-reader-model is not loaded" in text


def test_help_lists_every_command_and_the_menu_is_registered(bot):
    api, _ = bot
    [help_reply] = api.ask(next(_chat_ids), "/help")
    for command, _ in COMMANDS:
        assert f"/{command}" in help_reply.visible_text
    [registered] = api.calls("setMyCommands")
    assert [entry["command"] for entry in registered.params["commands"]] == [command for command, _ in COMMANDS]


def test_start_shows_no_examples_when_none_is_answered_surely(bot):
    api, engine = bot
    [start] = api.ask(next(_chat_ids), "/start")
    assert "Hi!" in start.visible_text and "/help" in start.visible_text
    assert "Try for example" not in start.visible_text  # without a reader model no answer is sure
    assert "report?" not in start.visible_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("   ", "Write your question"),
        ("👍🎉🔥", "in words"),
        (("Why really " * 400)[:3999] + "?", "4,000 characters"),
    ],
)
def test_bad_input_gets_a_clear_reply_without_asking_the_engine(bot, text, expected):
    api, engine = bot
    asked = len(engine.asked)
    [reply] = api.ask(next(_chat_ids), text)
    assert expected in reply.visible_text
    assert len(engine.asked) == asked


def test_mixed_script_question_is_answered(bot):
    api, _ = bot
    [reply] = api.ask(next(_chat_ids), "Who declared the talks dead? Кто объявил 会谈 dead?")
    assert reply.error == "" and reply.visible_text.strip()
