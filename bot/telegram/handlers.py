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
from collections.abc import Sequence
from typing import Protocol

from telegram import Chat, MessageEntity, Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.about import about_lines
from bot.examples import ExampleQuestions
from bot.telegram.access import CoolDownNotices, RateLimit, allowed
from bot.telegram.admin import AdminCommands, admin_only
from bot.telegram.feedback import FEEDBACK_DATA, FeedbackLog, answer_keyboard
from bot.telegram.format import HELP_TEXT, format_answer, format_more, format_sources, format_welcome, plain
from bot.telegram.messages import (
    addressed_question,
    after_utf16,
    answer_query,
    chat_data_of,
    message_of,
    replies_to,
    send_chunks,
    typing,
)
from bot.telegram.refresh import LAST_REFRESH
from bot.words import NO_WORDS, names_a_command, plural, unreadable_question
from retrieval.answering.answer import Answer, Turn
from retrieval.errors import InputError, QabotError, ServiceUnavailableError
from retrieval.settings import TelegramSettings

logger = logging.getLogger(__name__)

# Turns of a chat's conversation passed to the engine to understand follow-up questions.
HISTORY_TURNS = 5
# Answers per chat that can still be rated with the 👍/👎 buttons.
RATEABLE_ANSWERS = 100
EXAMPLE_QUESTIONS = 3
# Messages of any kind one user may send in a minute, per question allowed: beyond, one notice says
# when to try again and the rest of the cool-down gets no reply (a flood gets one reply, not 100).
MESSAGES_PER_QUESTION = 3

REFUSAL = "Sorry, this bot only answers its owner's allowlisted users and chats (your user id is {user_id})."
APOLOGY = "Sorry, something went wrong while answering. Please try again in a moment."
NOT_TEXT = "Please send your question as text; I can't read stickers, pictures, voice or files."
TOO_LONG = "Your question is {length:,} characters long; please ask it in at most {limit:,} characters."
RATE_LIMITED = "You're asking faster than I can answer (at most {limit} a minute). Please try again in {seconds}."
FLOODED = "You're sending messages faster than I can read them. Please try again in {seconds}."
ADDING_TOO_FAST = "You're adding articles faster than I can fetch them. Please try again in {seconds}."
EMPTY_ASK = "Write your question after /ask, for example: /ask Who declared the talks dead?"
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
FORGOTTEN = "OK, I've forgotten our conversation; the next question starts afresh."
THANKS = "Thanks for your feedback!"
CANNOT_RATE = "Sorry, I no longer remember that answer, so it can't be rated."
UNKNOWN_BUTTON = "Sorry, this button doesn't do anything (any more)."
EMPTY_ADD = "Write the article's address after /add, for example: /add https://example.org/news/story"
ADDED = "Added “{title}” ({passages})."
ALREADY_ADDED = "I already have “{title}” ({passages}), unchanged."
NOT_ADDED = "Sorry, I could not add {url}: {reason}."
NEEDS_OPERATOR = "the index needs its operator's attention (the bot's log says why)"
# A message that is one web address and nothing else: an admin adding an article.
_LINK = re.compile(r"https?://\S+", re.IGNORECASE)


class QuestionAnswerer(Protocol):
    """What the bot needs from the engine (`retrieval.engine.QAEngine`)."""

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer: ...

    def examples(self, n: int = 3) -> list[str]: ...


# Which limit a user ran into, and what the one notice of its cool-down says.
_LIMITS = {"questions": RATE_LIMITED, "messages": FLOODED, "adding": ADDING_TOO_FAST}


class TelegramFrontEnd:
    """The bot's handlers; each parses an update, calls the engine off the event loop, and replies."""

    def __init__(self, settings: TelegramSettings, engine: QuestionAnswerer, feedback: FeedbackLog) -> None:
        self.settings = settings
        self.engine = engine
        self.feedback = feedback
        # Only questions the engine answers from the articles use up the question allowance.
        self.rate_limit = RateLimit(settings.questions_per_minute)
        self.message_limit = RateLimit(MESSAGES_PER_QUESTION * settings.questions_per_minute)
        self.add_limit = RateLimit(settings.questions_per_minute)
        self.notices = CoolDownNotices()
        self.examples = ExampleQuestions(engine, EXAMPLE_QUESTIONS)
        self.admin = AdminCommands(engine, settings.admins, self._admit)

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
                CommandHandler("about", self.about, filters=new_message),
                CommandHandler("reset", self.reset, filters=new_message),
                CommandHandler("add", self.add, filters=new_message),
                *self.admin.handlers(),
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
            await message_of(update).reply_html(format_welcome(await self._example_questions()))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            await message_of(update).reply_html(HELP_TEXT)

    async def ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = message_of(update)
        command = next(iter(message.parse_entities([MessageEntity.BOT_COMMAND])), None)
        question = message.text or ""
        if command is not None and command.offset == 0:
            question = after_utf16(question, command.offset + command.length)
        await self._answer(update, context, question)

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        question = addressed_question(message_of(update), context.bot.id, context.bot.username)
        if question is not None and _LINK.fullmatch(question):
            await self._add(update, question)
        elif question is not None:
            await self._answer(update, context, question)

    async def add(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._add(update, " ".join(context.args or []))

    async def not_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = message_of(update)
        for_me = message.chat.type == Chat.PRIVATE or replies_to(message, context.bot.id)
        if for_me and await self._admit(update):
            await message.reply_html(plain(NOT_TEXT))

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            await message_of(update).reply_html(plain(UNKNOWN_COMMAND))

    async def sources(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            chunks = format_sources(chat_data_of(context).get("last_answer"))
            await send_chunks(message_of(update), chunks)

    async def more(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            await send_chunks(message_of(update), format_more(chat_data_of(context).get("last_answer")))

    async def about(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            last_refresh = context.bot_data.get(LAST_REFRESH)  # set by the feed refresh job
            lines = await asyncio.to_thread(about_lines, self.engine, last_refresh)
            await message_of(update).reply_html(plain("\n".join(lines)))

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            chat_data_of(context).pop("history", None)
            await message_of(update).reply_html(plain(FORGOTTEN))

    async def vote(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        if not await self._admit(update):
            return
        match = FEEDBACK_DATA.fullmatch(query.data)
        chat = update.effective_chat  # None for a button under an inline message: no chat, no answers
        answers = chat_data_of(context).get("answers", {}) if chat is not None else {}
        answer = answers.pop(int(match.group(1)), None) if match else None
        if match is None or answer is None or chat is None:
            await answer_query(query, CANNOT_RATE)
            return
        await asyncio.to_thread(self.feedback.record, answer, match.group(2), chat.id)
        await answer_query(query, THANKS)
        with contextlib.suppress(TelegramError):  # e.g. the message is too old to edit
            await query.edit_message_reply_markup(reply_markup=None)

    async def unknown_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button this bot did not make, or whose data is garbage: answered, so the client stops waiting."""
        query = update.callback_query
        assert query is not None, "the handler only lets callback queries through"
        if await self._admit(update):
            await answer_query(query, UNKNOWN_BUTTON)

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
        message = message_of(update)
        if not await self._admit(update):
            return
        question = question.strip()
        refusal = self._refusal(question)
        if refusal:
            await message.reply_html(plain(refusal))
            return
        if await self._too_fast(update, self.rate_limit, "questions"):
            return
        chat_data = chat_data_of(context)
        history: deque[Turn] = chat_data.setdefault("history", deque(maxlen=HISTORY_TURNS))
        try:
            async with typing(message):
                answer = await asyncio.to_thread(self.engine.ask, question, tuple(history))
        except ServiceUnavailableError as exc:  # the operator's to fix (Milvus down): the asker gets an apology
            logger.error("Could not answer update %s: %s", update.update_id, exc)
            self.rate_limit.refund(_sender(update))
            await message.reply_html(plain(APOLOGY))
            return
        except QabotError as exc:
            self.rate_limit.refund(_sender(update))
            await message.reply_html(plain(_said_to_askers(exc, update.update_id)))
            return
        if answer.kind == "reply":  # the engine's own words (a greeting): no question used up
            self.rate_limit.refund(_sender(update))
        history.append(Turn(question, answer))
        chat_data["last_answer"] = answer
        answers: OrderedDict[int, Answer] = chat_data.setdefault("answers", OrderedDict())
        answers[message.message_id] = answer
        while len(answers) > RATEABLE_ANSWERS:
            answers.popitem(last=False)
        await send_chunks(message, format_answer(answer), answer_keyboard(message.message_id, answer))

    async def _add(self, update: Update, url: str) -> None:
        """An admin's article link: fetched safely and indexed in a worker thread; the reply names it."""
        message = message_of(update)
        if not await self._admit(update):
            return
        if not await admin_only(update, self.settings.admins, f"add the article {url.strip()[:200]}", "add articles"):
            return
        url = url.strip()
        if not _LINK.fullmatch(url):
            await message.reply_html(plain(EMPTY_ADD))
            return
        if await self._too_fast(update, self.add_limit, "adding"):
            return
        try:
            async with typing(message):
                report = await asyncio.to_thread(self.engine.web.index_urls, [url])  # type: ignore[attr-defined]
        except QabotError as exc:
            reason = str(exc)
            if names_a_command(reason):  # meant for the command line: the operator's to fix
                logger.error("Could not add %s for update %s: %s", url, update.update_id, exc)
                reason = NEEDS_OPERATOR
            await message.reply_html(plain(NOT_ADDED.format(url=url, reason=reason)))
            return
        if report.failed:
            reply = NOT_ADDED.format(url=url, reason=report.failed[0].reason)
        else:
            article = report.articles[0]
            template = ALREADY_ADDED if report.unchanged else ADDED
            reply = template.format(title=article["title"], passages=plural(article["passages"], "passage"))
        await message.reply_html(plain(reply))

    async def _too_fast(self, update: Update, limit: RateLimit, what: str) -> bool:
        """True when the sender is over `limit` (which counts this action otherwise): told once per
        cool-down when to try again, whichever limit they ran into, then ignored."""
        sender = _sender(update)
        wait = limit.wait_seconds(sender)
        if not wait:
            return False
        if self.notices.due(sender, wait):
            seconds = plural(max(1, round(wait)), "second")
            notice = _LIMITS[what].format(limit=plural(limit.per_minute, "question"), seconds=seconds)
            await message_of(update).reply_html(plain(notice))
        else:
            logger.debug("Ignored update %s of user %s: asking too fast (%s)", update.update_id, sender, what)
        return True

    def _refusal(self, question: str) -> str | None:
        if not question:
            return EMPTY_ASK
        if len(question) > self.settings.max_question_chars:
            return TOO_LONG.format(length=len(question), limit=self.settings.max_question_chars)
        return unreadable_question(question)

    async def _admit(self, update: Update) -> bool:
        """True when the sender may use the bot; otherwise refuses politely and answers nothing.

        A user sending more messages than `message_limit` allows is told once when to try again and
        otherwise ignored (button presses excepted: Telegram's client waits for each to be answered).
        """
        user = update.effective_user
        chat = update.effective_chat
        counted = update.callback_query is None and update.effective_message is not None
        if counted and await self._too_fast(update, self.message_limit, "messages"):
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
            await answer_query(update.callback_query, refusal, show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_html(plain(refusal))
        return False

    async def _example_questions(self) -> list[str]:
        """Questions the engine answered "sure" just now (see bot/examples.py); [] when none did."""
        try:
            return await asyncio.to_thread(self.examples.get)
        except Exception:
            logger.exception("Could not make example questions")
            return []


def _said_to_askers(error: QabotError, update_id: int) -> str:
    """The engine's error in the bot's words: its message, unless that is meant for the command line
    (a question the engine found empty gets NO_WORDS; the rest is the operator's, logged, with an apology)."""
    if not names_a_command(str(error)):
        return str(error)
    if isinstance(error, InputError):
        return NO_WORDS
    logger.error("Could not answer update %s: %s", update_id, error)
    return APOLOGY


def _sender(update: Update) -> int:
    """Whom the limits count: the user, or the chat for a message without one (a channel post)."""
    if update.effective_user is not None:
        return update.effective_user.id
    return message_of(update).chat.id
