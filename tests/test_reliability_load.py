"""Load: 500 questions from 50 chats, all queued at once, are each answered exactly once, in order per chat.

The real bot and engine against the stand-in Bot API. Telegram's flood limit (30 requests a second,
which caps a bot at about 15 answers a second) is switched off here, so the test measures the bot
itself and stays quick; the throughput is printed (`pytest -s`) and recorded as a test property.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bot.telegram.connection import RetryingRateLimiter
from tests.conftest import make_settings
from tests.telegram_standin import SEED_QUESTIONS, WatchedEngine, running_bot

TOKEN = "7000007:load-SECRET-token"
CHATS = 50
QUESTIONS_PER_CHAT = 10


def test_500_questions_from_50_chats_are_answered_once_each_in_order(
    seed_engine, seed_index_dir, tmp_path, record_property
):
    engine = WatchedEngine(seed_engine)
    chats = list(range(5001, 5001 + CHATS))
    total = CHATS * QUESTIONS_PER_CHAT

    def settings_for(base_url: str) -> Any:
        telegram = {"base_url": base_url, "questions_per_minute": QUESTIONS_PER_CHAT}
        return make_settings(seed_index_dir, data={"dir": tmp_path / "data"}, telegram=telegram)

    unlimited = RetryingRateLimiter(overall_max_rate=0, group_max_rate=0)
    with running_bot(TOKEN, engine, settings_for, rate_limiter=unlimited) as (api, _):
        started = time.perf_counter()
        asked: dict[int, list[tuple[int, str]]] = {chat: [] for chat in chats}
        for number in range(QUESTIONS_PER_CHAT):
            for chat in chats:
                question = f"{SEED_QUESTIONS[number % len(SEED_QUESTIONS)]} (chat {chat}, question {number})"
                asked[chat].append((api.send_text(chat, question)["message_id"], question))

        def answered() -> int:
            return sum(1 for call in api.calls("sendMessage") if not call.error)

        api.wait_for(lambda: answered() >= total, timeout=300, what=f"{total} answers")
        seconds = time.perf_counter() - started
        for chat in chats:  # a chat's updates are handled in order: anything still due comes before this
            api.ask(chat, "/help")
        for chat in chats:
            replies = api.messages(chat)[:-1]
            assert [reply.reply_to for reply in replies] == [message_id for message_id, _ in asked[chat]]
            assert all(reply.error == "" and reply.buttons for reply in replies)  # answers, not refusals
    sent_questions = [question for chat in chats for _, question in asked[chat]]
    assert Counter(engine.questions()) == Counter(sent_questions)  # each asked exactly once
    record_property("answers_per_second", round(total / seconds, 1))
    print(f"\n{total} questions from {CHATS} chats answered in {seconds:.1f} s: {total / seconds:.1f} answers/s")
