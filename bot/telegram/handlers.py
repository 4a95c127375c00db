"""The bot's handlers, thin as in python-telegram-bot's examples: parse the update, ask the engine, reply.

`engine.ask` runs in a worker thread, so one slow question never holds up other chats; the replies
are what `bot/telegram/format.py` renders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from telegram import CallbackQuery, Chat, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.telegram.access import RateLimit, allowed
from bot.telegram.feedback import FEEDBACK_DATA, FeedbackLog, feedback_keyboard
from bot.telegram.format import HELP_TEXT, format_answer, format_more, format_sources, format_welcome, plain
from bot.words import plural
from retrieval.answering.answer import Answer, Turn
from retrieval.errors import QabotError, ServiceUnavailableError
from retrieval.settings import TelegramSettings

logger = logging.getLogger(__name__)

# Turns of a chat's conversation passed to the engine to understand follow-up questions.
HISTORY_TURNS = 5
# Answers per chat that can still be rated with the 👍/👎 buttons.
RATEABLE_ANSWERS = 100
# Telegram shows "typing…" for 5 seconds; renew it a little sooner.
TYPING_RENEW_SECONDS = 4.5
EXAMPLE_QUESTIONS = 3
# Messages of any kind one user may send in a minute, per question allowed; the rest get no reply.
MESSAGES_PER_QUESTION = 3

REFUSAL = "Sorry, this bot only answers its owner's allowlisted users and chats (your user id is {user_id})."
APOLOGY = "Sorry, something went wrong while answering. Please try again in a moment."
NOT_TEXT = "Please send your question as text; I can't read stickers, pictures, voice or files."
TOO_LONG = "Your question is {length:,} characters long; please ask it in at most {limit:,} characters."
RATE_LIMITED = "You're asking faster than I can answer (at most {limit} a minute). Please try again in {seconds}."
EMPTY_ASK = "Write your question after /ask, for example: /ask Who declared the talks dead?"
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
FORGOTTEN = "OK, I've forgotten our conversation; the next question starts afresh."
THANKS = "Thanks for your feedback!"
CANNOT_RATE = "Sorry, I no longer remember that answer, so it can't be rated."
UNKNOWN_BUTTON = "Sorry, this button doesn't do anything (any more)."
NOT_ADMIN = "Sorry, only the bot's admins can add articles; you can ask me about the ones I have."
EMPTY_ADD = "Write the article's address after /add, for example: /add https://example.org/news/story"
ADDED = "Added “{title}” ({passages})."
ALREADY_ADDED = "I already have “{title}” ({passages}), unchanged."
NOT_ADDED = "Sorry, I could not add {url}: {reason}."
# A message that is one web address and nothing else: an admin adding an article.
_LINK = re.compile(r"https?://\S+", re.IGNORECASE)


class QuestionAnswerer(Protocol):
    """What the bot needs from the engine (`retrieval.engine.QAEngine`)."""

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer: ...

    def examples(self, n: int = 3) -> list[str]: ...


class TelegramFrontEnd:
    """The bot's handlers; each parses an update, calls the engine off the event loop, and replies."""

    def __init__(self, settings: TelegramSettings, engine: QuestionAnswerer, feedback: FeedbackLog) -> None:
        self.settings = settings
        self.engine = engine
        self.feedback = feedback
        self.rate_limit = RateLimit(settings.questions_per_minute)
        self.message_limit = RateLimit(MESSAGES_PER_QUESTION * settings.questions_per_minute)
        self._examples: list[str] | None = None

    def register(self, application: Application) -> None:
        private = filters.ChatType.PRIVATE
        new_message = filters.UpdateType.MESSAGE  # not edits: an edited question is not asked again
        application.add_handlers(
            [
                CommandHandler("start", self.start, filters=new_message),
                CommandHandler("help", self.help, filters=new_message),
                CommandHandler("ask", self.ask, filters=new_message),
                CommandHandler("sources", self.sources, filters=new_message),
                CommandHandler("more", self.more, filters=new_message),
                CommandHandler("reset", self.reset, filters=new_message),
                CommandHandler("add", self.add, filters=new_message),
                MessageHandler(new_message & filters.TEXT & ~filters.COMMAND, self.text),
                MessageHandler(new_message & private & filters.COMMAND, self.unknown_command),
                MessageHandler(new_message & ~filters.TEXT & ~filters.StatusUpdate.ALL, self.not_text),
                CallbackQueryHandler(self.vote, pattern=FEEDBACK_DATA),
                CallbackQueryHandler(self.unknown_button),  # every button press must be answered
            ]
        )
        application.add_error_handler(self.on_error)

    # Commands and messages.

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            await _message(update).reply_html(format_welcome(await self._example_questions()))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            await _message(update).reply_html(HELP_TEXT)

    async def ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = _message(update)
        command = next(iter(message.parse_entities([MessageEntity.BOT_COMMAND])), None)
        question = message.text or ""
        if command is not None and command.offset == 0:
            question = _after_utf16(question, command.offset + command.length)
        await self._answer(update, context, question)

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        question = _addressed_question(_message(update), context.bot.id, context.bot.username)
        if question is not None and _LINK.fullmatch(question):
            await self._add(update, question)
        elif question is not None:
            await self._answer(update, context, question)

    async def add(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._add(update, " ".join(context.args or []))

    async def not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = _message(update)
        for_me = message.chat.type == Chat.PRIVATE or _replies_to(message, context.bot.id)
        if for_me and await self._admit(update):
            await message.reply_html(plain(NOT_TEXT))

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            await _message(update).reply_html(plain(UNKNOWN_COMMAND))

    async def sources(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            chunks = format_sources(_chat_data(context).get("last_answer"))
            await _send_chunks(_message(update), chunks)

    async def more(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            await _send_chunks(_message(update), format_more(_chat_data(context).get("last_answer")))

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            _chat_data(context).pop("history", None)
            await _message(update).reply_html(plain(FORGOTTEN))

    async def vote(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        if not await self._admit(update):
            return
        match = FEEDBACK_DATA.fullmatch(query.data)
        chat = update.effective_chat  # None for a button under an inline message: no chat, no answers
        answers = _chat_data(context).get("answers", {}) if chat is not None else {}
        answer = answers.pop(int(match.group(1)), None) if match else None
        if match is None or answer is None or chat is None:
            await _answer_query(query, CANNOT_RATE)
            return
        await asyncio.to_thread(self.feedback.record, answer, match.group(2), chat.id)
        await _answer_query(query, THANKS)
        with contextlib.suppress(TelegramError):  # e.g. the message is too old to edit
            await query.edit_message_reply_markup(reply_markup=None)

    async def unknown_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button this bot did not make, or whose data is garbage: answered, so the client stops waiting."""
        query = update.callback_query
        assert query is not None, "the handler only lets callback queries through"
        if await self._admit(update):
            await _answer_query(query, UNKNOWN_BUTTON)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        logger.error("Error while handling update %s", update_id, exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat is not None:
            try:
                await context.bot.send_message(update.effective_chat.id, plain(APOLOGY))
            except TelegramError as exc:
                logger.warning("Could not send an apology for update %s: %s", update_id, exc)

    # The work.

    async def _answer(self, update: Update, context: ContextTypes.DEFAULT_TYPE, question: str) -> None:
        """Checks the question, asks the engine in a worker thread, replies and remembers the turn."""
        message = _message(update)
        if not await self._admit(update):
            return
        question = question.strip()
        refusal = self._refusal(question)
        if refusal:
            await message.reply_html(plain(refusal))
            return
        if await self._too_fast(update):
            return
        chat_data = _chat_data(context)
        history: deque[Turn] = chat_data.setdefault("history", deque(maxlen=HISTORY_TURNS))
        try:
            async with _typing(message):
                answer = await asyncio.to_thread(self.engine.ask, question, tuple(history))
        except ServiceUnavailableError as exc:  # the operator's to fix (Milvus down): the asker gets an apology
            logger.error("Could not answer update %s: %s", update.update_id, exc)
            await message.reply_html(plain(APOLOGY))
            return
        except QabotError as exc:
            await message.reply_html(plain(str(exc)))
            return
        history.append(Turn(question, answer))
        chat_data["last_answer"] = answer
        answers: OrderedDict[int, Answer] = chat_data.setdefault("answers", OrderedDict())
        answers[message.message_id] = answer
        while len(answers) > RATEABLE_ANSWERS:
            answers.popitem(last=False)
        await _send_chunks(message, format_answer(answer), feedback_keyboard(message.message_id))

    async def _add(self, update: Update, url: str) -> None:
        """An admin's article link: fetched safely and indexed in a worker thread; the reply names it."""
        message = _message(update)
        if not await self._admit(update):
            return
        user = update.effective_user
        if user is None or user.id not in self.settings.admins:
            logger.info("Refused to add an article for user %s: not an admin", user.id if user else None)
            await message.reply_html(plain(NOT_ADMIN))
            return
        url = url.strip()
        if not _LINK.fullmatch(url):
            await message.reply_html(plain(EMPTY_ADD))
            return
        if await self._too_fast(update):
            return
        try:
            async with _typing(message):
                report = await asyncio.to_thread(self.engine.web.index_urls, [url])  # type: ignore[attr-defined]
        except QabotError as exc:
            await message.reply_html(plain(NOT_ADDED.format(url=url, reason=exc)))
            return
        if report.failed:
            reply = NOT_ADDED.format(url=url, reason=report.failed[0].reason)
        else:
            article = report.articles[0]
            template = ALREADY_ADDED if report.unchanged else ADDED
            reply = template.format(title=article["title"], passages=plural(article["passages"], "passage"))
        await message.reply_html(plain(reply))

    async def _too_fast(self, update: Update) -> bool:
        """True when the sender is over `questions_per_minute`: told once how long to wait, then ignored."""
        message = _message(update)
        user_id = update.effective_user.id if update.effective_user else message.chat.id
        wait = self.rate_limit.wait_seconds(user_id)
        if not wait:
            return False
        if self.rate_limit.notice_due(user_id, wait):
            refusal = RATE_LIMITED.format(
                limit=plural(self.rate_limit.per_minute, "question"), seconds=plural(max(1, round(wait)), "second")
            )
            await message.reply_html(plain(refusal))
        else:
            logger.debug("Ignored a question from user %s: asking too fast", user_id)
        return True

    def _refusal(self, question: str) -> str | None:
        if not question:
            return EMPTY_ASK
        if len(question) > self.settings.max_question_chars:
            return TOO_LONG.format(length=len(question), limit=self.settings.max_question_chars)
        return None

    async def _admit(self, update: Update) -> bool:
        """True when the sender may use the bot; otherwise refuses politely and answers nothing.

        A user sending more messages than `message_limit` allows is ignored quietly instead (button
        presses excepted: Telegram's client waits for each to be answered).
        """
        user = update.effective_user
        chat = update.effective_chat
        sender = user.id if user else chat.id if chat else None
        if update.callback_query is None and sender is not None and self.message_limit.wait_seconds(sender):
            logger.debug("Ignored update %s: user %s sends messages too fast", update.update_id, sender)
            return False
        if allowed(update, self.settings.allowlist):
            return True
        logger.info(
            "Refused update %s: user %s in chat %s is not in the allowlist",
            update.update_id,
            user.id if user else None,
            chat.id if chat else None,
        )
        refusal = REFUSAL.format(user_id=user.id if user else "unknown")
        if update.callback_query is not None:
            await _answer_query(update.callback_query, refusal, show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_html(plain(refusal))
        return False

    async def _example_questions(self) -> list[str]:
        if self._examples is None:
            try:
                self._examples = await asyncio.to_thread(self.engine.examples, EXAMPLE_QUESTIONS)
            except Exception:
                logger.exception("Could not make example questions")
                return []
        return self._examples


def _message(update: Update) -> Message:
    message = update.effective_message
    assert message is not None, "the handlers' filters only let updates with a message through"
    return message


async def _answer_query(query: CallbackQuery, text: str, show_alert: bool = False) -> None:
    """Answers a button press; one Telegram no longer accepts (e.g. too old) is not worth an apology."""
    try:
        await query.answer(text, show_alert=show_alert)
    except TelegramError as exc:
        logger.debug("Could not answer button press %s: %s", query.id, exc)


def _chat_data(context: ContextTypes.DEFAULT_TYPE) -> dict[Any, Any]:
    assert context.chat_data is not None, "every handled update has a chat"
    return context.chat_data


def _after_utf16(text: str, offset: int) -> str:
    """`text` after `offset` UTF-16 code units (Telegram entity offsets count UTF-16)."""
    return text.encode("utf-16-le")[offset * 2 :].decode("utf-16-le")


def _replies_to(message: Message, bot_id: int) -> bool:
    replied = message.reply_to_message
    return replied is not None and replied.from_user is not None and replied.from_user.id == bot_id


def _addressed_question(message: Message, bot_id: int, bot_username: str) -> str | None:
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
    if not (mentions or message.chat.type == Chat.PRIVATE or _replies_to(message, bot_id)):
        return None
    text = message.text or ""
    for part in mentions:
        text = text.replace(part, " ", 1)
    return text.strip(" ,:;")


@contextlib.asynccontextmanager
async def _typing(message: Message) -> AsyncIterator[None]:
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


async def _send_chunks(message: Message, chunks: Sequence[str], keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Replies with each chunk in order; the keyboard goes under the last one."""
    for number, chunk in enumerate(chunks, start=1):
        await message.reply_html(chunk, reply_markup=keyboard if number == len(chunks) else None)
