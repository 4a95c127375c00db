"""👍/👎 feedback: the buttons under an answer and the JSONL file the votes go to."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from retrieval.answering.answer import Answer
from retrieval.settings import Settings

FEEDBACK_FILE_NAME = "telegram-feedback.jsonl"
# The buttons' callback data: the id of the question's message, and the vote.
FEEDBACK_DATA = re.compile(r"fb:(\d+):(up|down)")


class FeedbackLog:
    """Appends 👍/👎 votes to a JSONL file: one object per vote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, answer: Answer, vote: str, chat_id: int) -> None:
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "chat_id": chat_id,
            "question": answer.question,
            "answer": answer.text,
            "kind": answer.kind,
            "score": round(answer.score, 4),
            "title": answer.title,
            "vote": vote,
        }
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(entry, ensure_ascii=False) + "\n")


def feedback_path(settings: Settings) -> Path:
    return settings.data.dir / FEEDBACK_FILE_NAME


READ_THE_ARTICLE = "📰 Read the article"


def feedback_keyboard(question_message_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("👍", callback_data=f"fb:{question_message_id}:up"),
                InlineKeyboardButton("👎", callback_data=f"fb:{question_message_id}:down"),
            ]
        ]
    )


def answer_keyboard(question_message_id: int, answer: Answer) -> InlineKeyboardMarkup:
    """The 👍/👎 buttons, and under them a "Read the article" link for an answer from a web article."""
    rows = [list(row) for row in feedback_keyboard(question_message_id).inline_keyboard]
    if answer.known and answer.url.startswith(("http://", "https://")):
        rows.append([InlineKeyboardButton(READ_THE_ARTICLE, url=answer.url)])
    return InlineKeyboardMarkup(rows)
