"""What the handlers share about messages: finding the question in one, replying in chunks, "typing…"."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from telegram import CallbackQuery, Chat, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import ContextTypes

logger = logging.getLogger(__name__)

# Telegram shows "typing…" for 5 seconds; renew it a little sooner.
TYPING_RENEW_SECONDS = 4.5


def message_of(update: Update) -> Message:
    message = update.effective_message
    assert message is not None, "the handlers' filters only let updates with a message through"
    return message


async def answer_query(query: CallbackQuery, text: str, show_alert: bool = False) -> None:
    """Answers a button press; one Telegram no longer accepts (e.g. too old) is not worth an apology."""
    try:
        await query.answer(text, show_alert=show_alert)
    except TelegramError as exc:
        logger.debug("Could not answer button press %s: %s", query.id, exc)


def chat_data_of(context: ContextTypes.DEFAULT_TYPE) -> dict[Any, Any]:
    assert context.chat_data is not None, "every handled update has a chat"
    return context.chat_data


def after_utf16(text: str, offset: int) -> str:
    """`text` after `offset` UTF-16 code units (Telegram entity offsets count UTF-16)."""
    return text.encode("utf-16-le")[offset * 2 :].decode("utf-16-le")


def replies_to(message: Message, bot_id: int) -> bool:
    replied = message.reply_to_message
    return replied is not None and replied.from_user is not None and replied.from_user.id == bot_id


def addressed_question(message: Message, bot_id: int, bot_username: str) -> str | None:
    """The question in a text message meant for the bot, or None when it is not for the bot.

    In a private chat every message is a question; in a group only a reply to the bot or a
    message mentioning it (the mention is cut from the question).
    """
    mention = f"@{bot_username}".lower()
    mentions = [
        part
        for entity, part in message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION]).items()
        if part.lower() == mention or (entity.user is not None and entity.user.id == bot_id)
    ]
    if not (mentions or message.chat.type == Chat.PRIVATE or replies_to(message, bot_id)):
        return None
    text = message.text or ""
    for part in mentions:
        text = text.replace(part, " ", 1)
    return text.strip(" ,:;")


@contextlib.asynccontextmanager
async def typing(message: Message) -> AsyncIterator[None]:
    """Shows "typing…" in the message's chat until the block ends."""
    thread_id = message.message_thread_id if message.is_topic_message else None

    async def show() -> bool:
        try:
            await message.get_bot().send_chat_action(message.chat.id, ChatAction.TYPING, message_thread_id=thread_id)
            return True
        except TelegramError as exc:  # the indicator is a nicety; never fail a question for it
            logger.debug("Could not show typing in chat %s: %s", message.chat.id, exc)
            return False

    async def renew() -> None:
        while True:
            await asyncio.sleep(TYPING_RENEW_SECONDS)
            if not await show():
                return

    renewing = asyncio.create_task(renew()) if await show() else None
    try:
        yield
    finally:
        if renewing is not None:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing


async def send_chunks(message: Message, chunks: Sequence[str], keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Replies with each chunk in order; the keyboard goes under the last one."""
    for number, chunk in enumerate(chunks, start=1):
        await message.reply_html(chunk, reply_markup=keyboard if number == len(chunks) else None)
