"""The Telegram front end: a python-telegram-bot v22 `Application` over the QA engine.

Handlers are thin: they decide whether a message is a question for the bot, run `engine.ask`
off the event loop (so one slow question never holds up other chats), and send what
`bot/telegram_format.py` renders. Updates are processed concurrently across chats and in
order within a chat (`PerChatOrder`), which also keeps each chat's conversation history sound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import signal
import stat
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlparse

from telegram import (
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.telegram_format import HELP_TEXT, format_answer, format_sources, format_welcome, plain
from retrieval.answer import Answer, Turn
from retrieval.errors import QabotError
from retrieval.settings import Settings, TelegramSettings

logger = logging.getLogger(__name__)

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
FEEDBACK_FILE_NAME = "telegram-feedback.jsonl"
# Turns of a chat's conversation passed to the engine to understand follow-up questions.
HISTORY_TURNS = 5
# Answers per chat that can still be rated with the 👍/👎 buttons.
RATEABLE_ANSWERS = 100
# Updates processed at the same time (across chats; within a chat they queue).
MAX_CONCURRENT_UPDATES = 256
# Telegram shows "typing…" for 5 seconds; renew it a little sooner.
TYPING_RENEW_SECONDS = 4.5
# Start-up calls (deleteWebhook / setWebhook) are retried this many times on network errors.
BOOTSTRAP_RETRIES = 5
# Sending an answer that fails on a network error (5xx, timeout, dropped connection) is retried this
# many times, after pauses doubling from SEND_FIRST_PAUSE up to SEND_MAX_PAUSE seconds: about 90 s in all.
SEND_RETRIES = 8
SEND_FIRST_PAUSE = 0.5
SEND_MAX_PAUSE = 30.0
# Only what delivers an answer is retried; "typing…" and callback answers are not worth the wait.
RETRIED_METHODS = frozenset({"sendMessage", "editMessageReplyMarkup"})
EXAMPLE_QUESTIONS = 3
REDACTED = "[REDACTED]"

REFUSAL = "Sorry, this bot only answers its owner's allowlisted users and chats (your user id is {user_id})."
APOLOGY = "Sorry, something went wrong while answering. Please try again in a moment."
NOT_TEXT = "Please send your question as text; I can't read stickers, pictures, voice or files."
TOO_LONG = "Your question is {length:,} characters long; please ask it in at most {limit:,} characters."
RATE_LIMITED = (
    "You're asking faster than I can answer (at most {limit} questions a minute). "
    "Please try again in {seconds} seconds."
)
EMPTY_ASK = "Write your question after /ask, for example: /ask Who declared the talks dead?"
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
FORGOTTEN = "OK, I've forgotten our conversation; the next question starts afresh."
THANKS = "Thanks for your feedback!"
CANNOT_RATE = "Sorry, I no longer remember that answer, so it can't be rated."


class QuestionAnswerer(Protocol):
    """What the bot needs from the engine (`retrieval.engine.QAEngine`)."""

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer: ...

    def examples(self, n: int = 3) -> list[str]: ...


# --- Secrets: the token is read here and never leaves in a message or a log record. ---------------


def read_token(settings: Settings, environ: Mapping[str, str] = os.environ) -> str:
    """The bot token from $TELEGRAM_BOT_TOKEN, else from `telegram.token_file`.

    Warns when the token file is readable by other users; raises QabotError (exit 2) when no
    token is set. Error messages name where the token should be, never the token itself.
    """
    token = environ.get(TOKEN_ENV, "").strip()
    if token:
        redact_in_logs(token)
        return token
    path = settings.telegram.token_file
    if path is None:
        raise QabotError(f"no Telegram bot token: set {TOKEN_ENV} (or telegram.token_file in the config)", exit_code=2)
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise QabotError(f"cannot read the Telegram token file {path}: {reason}", exit_code=2) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("The token file %s is accessible by other users; restrict it with: chmod 600 %s", path, path)
    if not token:
        raise QabotError(f"the Telegram token file {path} is empty; set {TOKEN_ENV} or fill it", exit_code=2)
    redact_in_logs(token)
    return token


class TokenRedactionFilter(logging.Filter):
    """Replaces secrets (the bot token) with [REDACTED] in a record's message, traceback and stack.

    Installed for every record through the log-record factory (see `redact_in_logs`), so
    handlers added later, and libraries that log request URLs (httpx), are covered too.
    """

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = tuple(secrets)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _leaks(self, text: str) -> bool:
        return any(secret in text for secret in self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        if self._leaks(message):
            record.msg, record.args = self.redact(message), None
        if record.exc_info:
            traceback_text = logging.Formatter().formatException(record.exc_info)
            if self._leaks(traceback_text):
                # exc_text is what formatters print; dropping exc_info stops handlers re-rendering it.
                record.exc_info, record.exc_text = None, self.redact(traceback_text)
        elif record.exc_text and self._leaks(record.exc_text):
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info and self._leaks(record.stack_info):
            record.stack_info = self.redact(record.stack_info)
        return True


_redaction = TokenRedactionFilter()
_redaction_lock = threading.Lock()


def redact_in_logs(token: str) -> TokenRedactionFilter:
    """From now on, `token` (also URL-quoted) is replaced by [REDACTED] in every log record.

    Works through the log-record factory, so it covers every logger and handler, including
    ones added later; the process never needs to log a token, so it is never undone.
    """
    with _redaction_lock:
        if not _redaction.secrets:
            previous = logging.getLogRecordFactory()

            def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                _redaction.filter(record)
                return record

            logging.setLogRecordFactory(redacting_factory)
        if token and token not in _redaction.secrets:
            _redaction.secrets = (*_redaction.secrets, token, quote(token, safe=""))
    return _redaction


# --- Per-user limits and per-chat state. ------------------------------------------------------------


class QuestionRateLimit:
    """At most `per_minute` questions from one user in any sliding minute."""

    def __init__(self, per_minute: int, clock: Any = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._asked: dict[int, deque[float]] = {}

    def wait_seconds(self, user_id: int) -> float:
        """0 when the user may ask now (the question is counted), else seconds until they may."""
        now = self._clock()
        asked = self._asked.setdefault(user_id, deque())
        while asked and now - asked[0] >= 60:
            asked.popleft()
        if len(asked) >= self.per_minute:
            return 60 - (now - asked[0])
        asked.append(now)
        if len(self._asked) > 10_000:  # forget idle users now and then
            self._asked = {user: times for user, times in self._asked.items() if times and now - times[-1] < 60}
        return 0.0


class PerChatOrder(BaseUpdateProcessor):
    """Processes updates concurrently, except that updates of one chat run one after another, in order.

    Each chat has a FIFO lock (asyncio locks wake waiters in order); PTB starts processing tasks
    in the order updates arrive, so a chat's replies keep the order of its questions.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._holders: Counter[int] = Counter()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._holders[chat.id] += 1
        try:
            async with lock:
                await coroutine
        finally:
            self._holders[chat.id] -= 1
            if not self._holders[chat.id]:
                del self._holders[chat.id], self._locks[chat.id]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


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


def _feedback_keyboard(question_message_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("👍", callback_data=f"fb:{question_message_id}:up"),
                InlineKeyboardButton("👎", callback_data=f"fb:{question_message_id}:down"),
            ]
        ]
    )


_FEEDBACK_DATA = re.compile(r"fb:(\d+):(up|down)")


# --- Handlers. ---------------------------------------------------------------------------------------


class TelegramFrontEnd:
    """The bot's handlers; each parses an update, calls the engine off the event loop, and replies."""

    def __init__(self, settings: TelegramSettings, engine: QuestionAnswerer, feedback: FeedbackLog) -> None:
        self.settings = settings
        self.engine = engine
        self.feedback = feedback
        self.rate_limit = QuestionRateLimit(settings.questions_per_minute)
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
                CommandHandler("reset", self.reset, filters=new_message),
                MessageHandler(new_message & filters.TEXT & ~filters.COMMAND, self.text),
                MessageHandler(new_message & private & filters.COMMAND, self.unknown_command),
                MessageHandler(new_message & ~filters.TEXT & ~filters.StatusUpdate.ALL, self.not_text),
                CallbackQueryHandler(self.vote, pattern=_FEEDBACK_DATA),
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
        if question is not None:
            await self._answer(update, context, question)

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

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._admit(update):
            _chat_data(context).pop("history", None)
            await _message(update).reply_html(plain(FORGOTTEN))

    async def vote(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        if not await self._admit(update):
            return
        match = _FEEDBACK_DATA.fullmatch(query.data)
        answer = _chat_data(context).get("answers", {}).pop(int(match.group(1)), None) if match else None
        if match is None or answer is None or update.effective_chat is None:
            await query.answer(CANNOT_RATE)
            return
        await asyncio.to_thread(self.feedback.record, answer, match.group(2), update.effective_chat.id)
        await query.answer(THANKS)
        with contextlib.suppress(TelegramError):  # e.g. the message is too old to edit
            await query.edit_message_reply_markup(reply_markup=None)

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
        refusal = self._refusal(question, update.effective_user.id if update.effective_user else message.chat.id)
        if refusal:
            await message.reply_html(plain(refusal))
            return
        chat_data = _chat_data(context)
        history: deque[Turn] = chat_data.setdefault("history", deque(maxlen=HISTORY_TURNS))
        try:
            async with _typing(message):
                answer = await asyncio.to_thread(self.engine.ask, question, tuple(history))
        except QabotError as exc:
            await message.reply_html(plain(str(exc)))
            return
        history.append(Turn(question, answer))
        chat_data["last_answer"] = answer
        answers: OrderedDict[int, Answer] = chat_data.setdefault("answers", OrderedDict())
        answers[message.message_id] = answer
        while len(answers) > RATEABLE_ANSWERS:
            answers.popitem(last=False)
        await _send_chunks(message, format_answer(answer), _feedback_keyboard(message.message_id))

    def _refusal(self, question: str, user_id: int) -> str | None:
        if not question:
            return EMPTY_ASK
        if len(question) > self.settings.max_question_chars:
            return TOO_LONG.format(length=len(question), limit=self.settings.max_question_chars)
        wait = self.rate_limit.wait_seconds(user_id)
        if wait:
            return RATE_LIMITED.format(limit=self.rate_limit.per_minute, seconds=max(1, round(wait)))
        return None

    def allowed(self, update: Update) -> bool:
        allowlist = self.settings.allowlist
        if not allowlist:
            return True
        ids = {entity.id for entity in (update.effective_user, update.effective_chat) if entity is not None}
        return bool(ids & set(allowlist))

    async def _admit(self, update: Update) -> bool:
        """True when the sender may use the bot; otherwise refuses politely and answers nothing."""
        if self.allowed(update):
            return True
        user = update.effective_user
        chat = update.effective_chat
        logger.info(
            "Refused update %s: user %s in chat %s is not in the allowlist",
            update.update_id,
            user.id if user else None,
            chat.id if chat else None,
        )
        refusal = REFUSAL.format(user_id=user.id if user else "unknown")
        if update.callback_query is not None:
            await update.callback_query.answer(refusal, show_alert=True)
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


# --- Building and running. ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """Webhook mode: Telegram posts updates to `url`, which reaches this process at listen:port."""

    url: str
    listen: str
    port: int
    secret: str

    @property
    def path(self) -> str:
        return urlparse(self.url).path.strip("/")


class RetryingRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (Telegram's flood limits, 429 `retry_after`), which also rides out outages.

    An answer whose sending fails on a network error (502/503/504, a timeout, a dropped connection)
    is sent again after growing pauses, so a Telegram outage of a minute or so loses no answer.
    A send that timed out after Telegram had accepted it would arrive twice: rare, and better than
    an answer lost. Errors Telegram means (400, 403, 401) are not retried.
    """

    def __init__(
        self,
        *,
        send_retries: int = SEND_RETRIES,
        first_pause: float = SEND_FIRST_PAUSE,
        max_pause: float = SEND_MAX_PAUSE,
        **limits: Any,
    ) -> None:
        super().__init__(**limits)
        self.send_retries = send_retries
        self.first_pause = first_pause
        self.max_pause = max_pause

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        pause = self.first_pause
        for attempt in range(self.send_retries + 1):
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
            except NetworkError as exc:
                if endpoint not in RETRIED_METHODS or attempt == self.send_retries:
                    raise
                logger.warning("%s failed (%s); retrying in %.1f s", endpoint, exc or type(exc).__name__, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_pause)
        raise AssertionError("unreachable: the last attempt returns or raises")


class TokenRejection:
    """Set when Telegram answers any request with 401 Unauthorized (or 404): the token was revoked."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.status: HTTPStatus | None = None

    def report(self, status: int) -> None:
        self.status = self.status or HTTPStatus(status)
        self.event.set()


class _TokenWatchingRequest(HTTPXRequest):
    """PTB's HTTP requests, reporting a rejected token: PTB's polling loop just ends on one, silently."""

    def __init__(self, rejection: TokenRejection, **options: Any) -> None:
        super().__init__(**options)
        self._rejection = rejection

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, payload = await super().do_request(*args, **kwargs)
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.NOT_FOUND):
            self._rejection.report(status)
        return status, payload


class BotApplication(Application):  # type: ignore[type-arg]
    """PTB's Application, plus `token_rejection`, which `serve` watches to stop a bot whose token was revoked."""

    __slots__ = ("token_rejection",)

    def __init__(self, *, token_rejection: TokenRejection, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token_rejection = token_rejection


def build_application(
    settings: Settings, engine: QuestionAnswerer, token: str, *, rate_limiter: AIORateLimiter | None = None
) -> Application:
    """The PTB Application with qabot's handlers, pointed at `telegram.base_url`."""
    redact_in_logs(token)  # PTB logs its URLs, token included, as soon as the bot is built
    base_url = settings.telegram.base_url
    rejection = TokenRejection()
    timeout = settings.telegram.request_timeout

    def request(connections: int) -> HTTPXRequest:
        # PTB adds the long-poll time to the read timeout of getUpdates.
        return _TokenWatchingRequest(
            rejection,
            connection_pool_size=connections,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
        )

    builder = (
        ApplicationBuilder()
        .application_class(BotApplication, {"token_rejection": rejection})
        .token(token)
        .base_url(base_url)
        .request(request(MAX_CONCURRENT_UPDATES))
        .get_updates_request(request(1))
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                do_quote=True,
                allow_sending_without_reply=True,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .concurrent_updates(PerChatOrder(MAX_CONCURRENT_UPDATES))
        .rate_limiter(rate_limiter or RetryingRateLimiter(max_retries=3))
    )
    if base_url.endswith("/bot"):  # a self-hosted server serves files under /file/bot too
        builder = builder.base_file_url(base_url[: -len("bot")] + "file/bot")
    application = builder.build()
    TelegramFrontEnd(settings.telegram, engine, FeedbackLog(feedback_path(settings))).register(application)
    return application


async def serve(
    application: Application,
    stop: asyncio.Event,
    *,
    webhook: Webhook | None = None,
    poll_timeout: float = 10.0,
) -> None:
    """Runs the bot until `stop` is set; raises QabotError (without the token) when it cannot run.

    A 409 Conflict while polling means another process polls with the same token, and a 401 means
    the token was revoked: either way the bot stops with a one-line error.
    """
    redaction = redact_in_logs(application.bot.token)
    rejection = application.token_rejection if isinstance(application, BotApplication) else TokenRejection()
    conflicts: list[Conflict] = []

    def on_polling_error(error: TelegramError) -> None:
        if isinstance(error, Conflict):
            conflicts.append(error)
            stop.set()
        else:
            logger.warning("Polling Telegram failed (%s); retrying.", error)

    await _initialize(application)
    watching = asyncio.create_task(_set_when(rejection.event, stop))
    # PTB logs a traceback when a 401 ends its polling loop; the error raised below says it in one line.
    ptb_logger, quiet_rejection = logging.getLogger("telegram.ext"), _DropRecords("Invalid token. Aborting")
    ptb_logger.addFilter(quiet_rejection)
    try:
        await application.start()
        updater = application.updater
        assert updater is not None, "built with an Updater"
        if webhook is not None:
            await updater.start_webhook(
                listen=webhook.listen,
                port=webhook.port,
                url_path=webhook.path,
                webhook_url=webhook.url,
                secret_token=webhook.secret,
                bootstrap_retries=BOOTSTRAP_RETRIES,
            )
        else:
            await updater.start_polling(
                timeout=poll_timeout, bootstrap_retries=BOOTSTRAP_RETRIES, error_callback=on_polling_error
            )
        mode = f"webhook on {webhook.listen}:{webhook.port}" if webhook else "polling"
        logger.info("Telegram bot @%s is running (%s)", application.bot.username, mode)
        await stop.wait()
    except TelegramError as exc:
        if not rejection.event.is_set():
            raise QabotError(f"Telegram refused to start the bot: {redaction.redact(str(exc))}") from None
    finally:
        watching.cancel()
        logger.info("Stopping the Telegram bot")
        if application.updater is not None and application.updater.running:
            # After a 409 or 401 the updater's last getUpdates fails too (and a 401 ended its loop).
            with _quiet_final_poll(bool(conflicts) or rejection.event.is_set()), contextlib.suppress(InvalidToken):
                await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()
        ptb_logger.removeFilter(quiet_rejection)
    if rejection.event.is_set():
        status = rejection.status or HTTPStatus.UNAUTHORIZED
        raise QabotError(
            f"Telegram stopped accepting the bot token ({status.value} {status.phrase}); it may have been "
            f"revoked: set the new token in {TOKEN_ENV} or telegram.token_file and start the bot again",
            exit_code=2,
        )
    if conflicts:
        raise QabotError(
            "another bot instance is already receiving updates with this token (409 Conflict); "
            "stop it, or give this bot its own token"
        )


async def _set_when(event: asyncio.Event, stop: asyncio.Event) -> None:
    await event.wait()
    stop.set()


class _DropRecords(logging.Filter):
    """Drops log records whose message contains one of `fragments` (PTB's, for failures we report)."""

    def __init__(self, *fragments: str) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(fragment in record.getMessage() for fragment in self.fragments)


@contextlib.contextmanager
def _quiet_final_poll(failing: bool) -> Iterator[None]:
    """When the updater's last getUpdates is bound to fail, its traceback would bury our one line."""
    if not failing:
        yield
        return
    updater_logger = logging.getLogger("telegram.ext.Updater")
    quiet = _DropRecords("Error while calling `get_updates` one more time")
    updater_logger.addFilter(quiet)
    try:
        yield
    finally:
        updater_logger.removeFilter(quiet)


async def _initialize(application: Application) -> None:
    """Initializes the application (getMe); a rejected token or an unreachable API is a QabotError."""
    bot = application.bot
    try:
        await application.initialize()
    except InvalidToken:  # its message holds the token
        raise QabotError(
            f"Telegram rejected the bot token (401 Unauthorized): check {TOKEN_ENV} or telegram.token_file",
            exit_code=2,
        ) from None
    except TelegramError as exc:
        where = _without_token(bot.base_url, bot.token)
        reason = redact_in_logs(bot.token).redact(str(exc))
        raise QabotError(f"cannot reach the Telegram Bot API at {where}: {reason}") from None


def _without_token(base_url: str, token: str) -> str:
    """The Bot API address without the token PTB put into it."""
    return base_url.replace(token, "") if token else base_url


def run_bot(
    settings: Settings,
    engine: QuestionAnswerer,
    token: str,
    webhook_url: str | None = None,
    listen: str | None = None,
    port: int | None = None,
) -> int:
    """Runs the bot until SIGINT/SIGTERM; polling unless `webhook_url` is given. Returns the exit code."""
    application = build_application(settings, engine, token)
    webhook = None
    if webhook_url:
        webhook = Webhook(
            url=webhook_url,
            listen=listen or settings.telegram.webhook_listen,
            port=port or settings.telegram.webhook_port,
            secret=secrets.token_urlsafe(32),
        )
    return asyncio.run(_serve_until_signalled(application, webhook))


async def _serve_until_signalled(application: Application, webhook: Webhook | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    for number in stop_signals:
        loop.add_signal_handler(number, stop.set)
    try:
        await serve(application, stop, webhook=webhook)
    finally:
        for number in stop_signals:
            loop.remove_signal_handler(number)
    logger.info("Telegram bot stopped")
    return 0


def bot_command(settings: Settings, webhook_url: str | None, listen: str | None, port: int | None) -> int:
    """`qabot bot`: reads the token, loads the index and models once, runs the bot; returns the exit code.

    Raises QabotError (exit 2) when no token is set; indexes the configured corpus first when
    the index is empty, as `qabot chat` does.
    """
    token = read_token(settings)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL (token redacted) and Haystack every pipeline step at INFO: noise here.
    for chatty in ("httpx", "haystack"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from retrieval.engine import QAEngine  # loads models: imported only when the bot really starts

    engine = QAEngine(settings)
    if engine.is_empty():
        corpus = ", ".join(map(str, settings.index.corpus))
        logger.info("The index is empty: indexing %s first", corpus)
        engine.index_paths(list(settings.index.corpus))
    engine.warm_up()
    try:
        return run_bot(settings, engine, token, webhook_url=webhook_url, listen=listen, port=port)
    except QabotError:
        raise
    except Exception as exc:  # PTB's messages may quote the token: the traceback goes to the (redacted) log
        logger.error("The Telegram bot stopped on an unexpected error", exc_info=True)
        reason = " ".join(redact_in_logs(token).redact(str(exc)).split())
        raise QabotError(f"the Telegram bot stopped on an unexpected {type(exc).__name__}: {reason}") from None
