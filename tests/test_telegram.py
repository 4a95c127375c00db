"""The Telegram bot end to end: the real PTB Application and QA engine, a stand-in Bot API on 127.0.0.1.

One bot runs for the whole module; each test talks to it from its own chat ids, so tests do
not share conversation history or rate limits.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.telegram.feedback import feedback_path
from bot.telegram.format import telegram_length
from retrieval.answering.answer import Answer, Turn
from retrieval.settings import Settings
from tests.conftest import make_settings
from tests.telegram_standin import (
    SEED_QUESTIONS,
    ApiCall,
    BotApiStandIn,
    LogCapture,
    WatchedEngine,
    capturing_logs,
    running_bot,
)

TOKEN = "7000001:standin-SECRET-token_qabot"
FAILING = "Please fail on this question"
SLOW = "Who said there had been a breakthrough?"
LONG = "Who declared the talks dead, at length?"
LONG_TEXT = ("Donald Trump declared the talks dead & <gone>. " * 110)[:5000]

_chat_ids = itertools.count(1001)


def new_chat() -> int:
    return next(_chat_ids)


class ScriptedEngine(WatchedEngine):
    """The real engine, watched; three scripted questions fail, wait, or get a 5,000-character answer."""

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self.slow_started = threading.Event()
        self.slow_release = threading.Event()

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        if question == FAILING:
            raise RuntimeError("scripted failure")
        if question == SLOW:
            self.slow_started.set()
            self.slow_release.wait(60)
        answer = super().ask(question, history)
        return dataclasses.replace(answer, text=LONG_TEXT, confidence="sure") if question == LONG else answer


@pytest.fixture(scope="module")
def all_logs() -> Iterator[LogCapture]:
    with capturing_logs() as capture:
        yield capture


@pytest.fixture(scope="module")
def bot(all_logs: LogCapture, seed_engine: Any, seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """(stand-in API, scripted engine, settings) of a bot running for the whole module."""
    data = tmp_path_factory.mktemp("telegram") / "data"
    engine = ScriptedEngine(seed_engine)

    def settings_for(base_url: str) -> Settings:
        return make_settings(seed_index_dir, data={"dir": data}, telegram={"base_url": base_url})

    try:
        with running_bot(TOKEN, engine, settings_for) as (api, settings):
            yield api, engine, settings
    finally:
        engine.slow_release.set()


def ask(api: BotApiStandIn, chat_id: int, text: str, count: int = 1, **kwargs: Any) -> list[ApiCall]:
    return api.ask(chat_id, text, count, **kwargs)


def test_start_greets_without_examples_the_engine_is_not_sure_of(bot):
    api, _, _ = bot
    [reply] = ask(api, new_chat(), "/start")
    assert "Hi" in reply.visible_text
    assert "Try for example" not in reply.visible_text  # sentence answers are never sure


def test_help_lists_the_commands(bot):
    api, _, _ = bot
    [reply] = ask(api, new_chat(), "/help")
    for command in ("/ask", "/sources", "/reset"):
        assert command in reply.visible_text


def test_seed_question_is_answered_with_donald_trump(bot):
    api, _, _ = bot
    chat = new_chat()
    [reply] = ask(api, chat, "Who declared the talks dead?")
    assert "<b>" in reply.text and "Donald Trump" in reply.visible_text
    assert "Mike Pompeo hails important breakthrough" in reply.visible_text  # the article title
    assert "Confidence" in reply.visible_text
    assert "Not sure" in reply.visible_text  # a sentence answer is never sure of the exact words
    assert "models pull" not in reply.visible_text  # the missing reader is the operator's note, not the user's
    assert [button["text"] for button in reply.buttons] == ["👍", "👎"]
    typing = [call for call in api.calls("sendChatAction", chat) if call.params["action"] == "typing"]
    assert typing and typing[0].number < reply.number


def test_follow_up_question_keeps_the_chat_context(bot):
    api, engine, _ = bot
    chat = new_chat()
    ask(api, chat, "Who declared the talks dead?")
    [reply] = ask(api, chat, "When did he do that?")
    assert "September" in reply.visible_text
    assert [turn.question for turn in engine.asked[-1][1]] == ["Who declared the talks dead?"]
    # Another chat has no such context.
    [elsewhere] = ask(api, new_chat(), "When did he do that?")
    assert "I don't know" in elsewhere.visible_text


def test_reset_forgets_the_context(bot):
    api, _, _ = bot
    chat = new_chat()
    ask(api, chat, "Who declared the talks dead?")
    [forgotten] = ask(api, chat, "/reset")
    assert "forgotten" in forgotten.visible_text
    [reply] = ask(api, chat, "When did he do that?")
    assert "I don't know" in reply.visible_text


def test_sources_name_the_article_behind_the_last_answer(bot):
    api, _, _ = bot
    chat = new_chat()
    [none_yet] = ask(api, chat, "/sources")
    assert "Ask a question first" in none_yet.visible_text
    ask(api, chat, "Who declared the talks dead?")
    [sources] = ask(api, chat, "/sources")
    assert sources.visible_text == "📰 Mike Pompeo hails important breakthrough in US-Taliban talks"


def test_more_shows_the_other_answers_to_the_last_question_and_says_when_there_was_none(bot):
    api, _, _ = bot
    chat = new_chat()
    [none_yet] = ask(api, chat, "/more")
    assert "Ask a question first" in none_yet.visible_text
    [answer] = ask(api, chat, "Who declared the talks dead?")
    assert "Not sure" in answer.visible_text and "not sure" in answer.visible_text  # a sentence answer's band
    [more] = ask(api, chat, "/more")
    assert "Other answers to “Who declared the talks dead?”" in more.visible_text
    assert "Mike Pompeo hails important breakthrough" in more.visible_text
    assert "1. " in more.visible_text and "President Donald Trump" not in more.visible_text.split("\n")[1]


def test_sticker_gets_asked_for_text(bot):
    api, engine, _ = bot
    chat = new_chat()
    sticker = api.send_sticker(chat)
    [reply] = api.wait_for_replies(chat, sticker)
    assert "send your question as text" in reply.visible_text
    assert len(api.messages(chat)) == 1


def test_group_messages_are_answered_only_when_meant_for_the_bot(bot):
    api, engine, _ = bot
    group = -new_chat()
    ignored = api.send_text(group, "Who declared the talks dead?", user_id=501)
    [mentioned] = ask(api, group, "@qabot_test_bot who declared the talks dead?", user_id=501)
    assert "Donald Trump" in mentioned.visible_text
    # Updates of a chat are handled in order, so the first message was already passed over.
    assert all(call.reply_to != ignored["message_id"] for call in api.messages(group))
    assert engine.questions()[-1] == "who declared the talks dead?"  # the mention is cut off
    [by_command] = ask(api, group, "/ask@qabot_test_bot When did he do that?", user_id=502)
    assert "September" in by_command.visible_text
    [by_reply] = ask(api, group, "When was that?", user_id=503, reply_to=mentioned.result)
    assert by_reply.error == ""
    api.send_sticker(group, user_id=504)
    ask(api, group, "/help", user_id=504)
    assert "send your question as text" not in " ".join(call.visible_text for call in api.messages(group))


def test_long_answer_is_split_into_messages_within_telegram_limit(bot):
    api, _, _ = bot
    chat = new_chat()
    replies = ask(api, chat, LONG, count=2)
    assert api.messages(chat) == replies
    assert all(reply.error == "" and telegram_length(reply.visible_text) <= 4096 for reply in replies)
    assert LONG_TEXT in "".join(reply.visible_text for reply in replies)
    assert [bool(reply.buttons) for reply in replies] == [False, True]


def test_html_in_a_question_is_echoed_escaped(bot):
    api, _, _ = bot
    question = "<script>alert('x')</script> & <b>zebra</b> crossings?"
    [reply] = ask(api, new_chat(), question)
    assert "I don't know" in reply.visible_text
    assert question in reply.visible_text
    assert "<script>" not in reply.text and html.escape("<b>zebra</b>") in reply.text


def test_overlong_question_is_refused_without_asking_the_engine(bot):
    api, engine, settings = bot
    question = "Why " + "really " * 200 + "?"
    assert len(question) > settings.telegram.max_question_chars
    [reply] = ask(api, new_chat(), question)
    assert "1,000 characters" in reply.visible_text
    assert question.strip() not in engine.questions()


def test_feedback_buttons_record_votes(bot):
    api, _, settings = bot
    chat = new_chat()
    [reply] = ask(api, chat, "Who declared the talks dead?")
    down = next(button["callback_data"] for button in reply.buttons if button["text"] == "👎")
    api.press(reply, down, user_id=chat)
    answered = api.wait_for(lambda: api.calls("answerCallbackQuery"), what="the vote to be acknowledged")
    assert "Thanks" in answered[-1].params["text"]
    api.wait_for(lambda: api.calls("editMessageReplyMarkup", chat), what="the buttons to be removed")
    votes = [json.loads(line) for line in feedback_path(settings).read_text("utf-8").splitlines()]
    [vote] = [vote for vote in votes if vote["chat_id"] == chat]
    assert vote["question"] == "Who declared the talks dead?"
    assert "Donald Trump" in vote["answer"]
    assert vote["vote"] == "down" and vote["time"]
    # A second press of the same button is not counted twice.
    api.press(reply, down, user_id=chat)
    api.wait_for(lambda: len(api.calls("answerCallbackQuery")) == len(answered) + 1, what="the second press")
    assert "no longer remember" in api.calls("answerCallbackQuery")[-1].params["text"]
    votes = [json.loads(line) for line in feedback_path(settings).read_text("utf-8").splitlines()]
    assert [vote["chat_id"] for vote in votes].count(chat) == 1


def test_error_in_a_handler_is_logged_and_apologised_for(bot, all_logs):
    api, _, _ = bot
    chat = new_chat()
    message = api.send_text(chat, FAILING)
    apology = api.wait_for(lambda: api.messages(chat), what="an apology")
    assert "Sorry, something went wrong" in apology[0].visible_text
    logged = f"Error while handling update {api.update_id(message)}"
    api.wait_for(lambda: logged in all_logs.text, what="the error to be logged")
    assert "RuntimeError: scripted failure" in all_logs.text
    [reply] = ask(api, chat, "Who declared the talks dead?")
    assert "Donald Trump" in reply.visible_text


def test_slow_question_does_not_hold_up_other_chats(bot):
    api, engine, _ = bot
    slow_chat, other_chat = new_chat(), new_chat()
    slow = api.send_text(slow_chat, SLOW)
    assert engine.slow_started.wait(20)
    [other] = ask(api, other_chat, "Who declared the talks dead?")
    assert "Donald Trump" in other.visible_text
    assert api.messages(slow_chat) == []
    engine.slow_release.set()
    [answer] = api.wait_for_replies(slow_chat, slow)
    assert "Pompeo" in answer.visible_text


def test_fifty_questions_from_ten_chats_are_answered_once_each_in_order(bot):
    api, _, _ = bot
    chats = [new_chat() for _ in range(10)]
    sent: dict[int, list[int]] = {chat: [] for chat in chats}
    for question in SEED_QUESTIONS:
        for chat in chats:
            sent[chat].append(api.send_text(chat, question)["message_id"])

    def all_answered() -> bool:
        return all(len(api.messages(chat)) >= len(SEED_QUESTIONS) for chat in chats)

    api.wait_for(all_answered, timeout=120, what="50 answers")
    [ask(api, chat, "/help") for chat in chats]  # anything still queued for a chat came before this
    for chat in chats:
        replies = api.messages(chat)[:-1]
        assert [reply.reply_to for reply in replies] == sent[chat]
        assert all(reply.error == "" for reply in replies)


def test_token_appears_in_no_log_record(bot, all_logs):
    """Runs last in this module: everything logged so far, start-up and all tests, is checked."""
    assert "[REDACTED]" in all_logs.text  # the request URLs were logged, with the token cut out
    assert TOKEN not in all_logs.text
    assert TOKEN.split(":", 1)[1] not in all_logs.text
