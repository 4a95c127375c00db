"""Building and serving the bot: the PTB Application, polling or the webhook, retries, shutdown, `qabot bot`.

Updates are processed concurrently across chats and in order within a chat (`PerChatOrder`), which
also keeps each chat's conversation history sound. The token never appears in an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import Callable, Iterator
from http import HTTPStatus

from telegram import BotCommand, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults
from telegram.request import HTTPXRequest

from bot.telegram.access import PerChatOrder
from bot.telegram.connection import BotApiRequest, BotApplication, RetryingRateLimiter, TokenRejection
from bot.telegram.feedback import FeedbackLog, feedback_path
from bot.telegram.format import COMMANDS
from bot.telegram.handlers import QuestionAnswerer, TelegramFrontEnd
from bot.telegram.refresh import schedule_feed_refresh
from bot.telegram.updates import MalformedUpdates, UpdateReader
from bot.telegram.webhook import MAX_CONNECTIONS, Webhook, WebhookServer
from retrieval.errors import QabotError
from retrieval.secrets import TOKEN_ENV, read_token, redact_in_logs
from retrieval.settings import Settings

logger = logging.getLogger(__name__)

# Updates processed at the same time (across chats; within a chat they queue).
MAX_CONCURRENT_UPDATES = 256
# Start-up calls (deleteWebhook / setWebhook) are retried this many times on network errors.
BOOTSTRAP_RETRIES = 5


def build_application(
    settings: Settings, engine: QuestionAnswerer, token: str, *, rate_limiter: AIORateLimiter | None = None
) -> Application:
    """The PTB Application with qabot's handlers, pointed at `telegram.base_url`."""
    redact_in_logs(token)  # PTB logs its URLs, token included, as soon as the bot is built
    base_url = settings.telegram.base_url
    rejection = TokenRejection()
    timeout = settings.telegram.request_timeout

    def request(connections: int, screen: Callable[[bytes], bytes] | None = None) -> HTTPXRequest:
        # PTB adds the long-poll time to the read timeout of getUpdates.
        return BotApiRequest(
            rejection,
            screen,
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
        .get_updates_request(request(1, UpdateReader().screen_updates))
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
    schedule_feed_refresh(application, engine, settings.feeds.refresh_minutes)
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
        elif isinstance(error, MalformedUpdates):  # the reader has logged what it skipped, once
            logger.debug("Polling again later: %s", error)
        else:
            logger.warning("Polling Telegram failed (%s); retrying.", error)

    await _initialize(application)
    await _register_commands(application)
    webhook_server = WebhookServer(webhook, application.bot, application.update_queue) if webhook else None
    watching = asyncio.create_task(_set_when(rejection.event, stop))
    # PTB logs a traceback when a 401 ends its polling loop; the error raised below says it in one line.
    ptb_logger, quiet_rejection = logging.getLogger("telegram.ext"), _DropRecords("Invalid token. Aborting")
    ptb_logger.addFilter(quiet_rejection)
    try:
        await application.start()
        if webhook_server is not None:
            _listen(webhook_server)
            await _register_webhook(application, webhook_server.webhook)
        else:
            assert application.updater is not None, "built with an Updater"
            await application.updater.start_polling(
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
        if webhook_server is not None:
            await webhook_server.stop()
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


def _listen(server: WebhookServer) -> None:
    webhook = server.webhook
    try:
        server.start()
    except OSError as exc:
        raise QabotError(f"cannot serve the webhook on {webhook.listen}:{webhook.port}: {exc.strerror}") from None


async def _register_webhook(application: Application, webhook: Webhook) -> None:
    """setWebhook, retried on network errors; Telegram then posts updates with `webhook.secret`."""
    for attempt in range(BOOTSTRAP_RETRIES + 1):
        try:
            await application.bot.set_webhook(webhook.url, secret_token=webhook.secret, max_connections=MAX_CONNECTIONS)
            return
        except NetworkError as exc:
            if attempt == BOOTSTRAP_RETRIES:
                raise
            logger.warning("Registering the webhook failed (%s); retrying.", exc)
            await asyncio.sleep(1)


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
    """The updater's last getUpdates fails after a 409 or 401, or may meet updates the reader cannot
    read (logged already): its traceback would bury our one line.
    """
    updater_logger = logging.getLogger("telegram.ext.Updater")
    quiet = _DropFinalPollError(failing)
    updater_logger.addFilter(quiet)
    try:
        yield
    finally:
        updater_logger.removeFilter(quiet)


class _DropFinalPollError(_DropRecords):
    def __init__(self, failing: bool) -> None:
        super().__init__("Error while calling `get_updates` one more time")
        self.failing = failing

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return super().filter(record) or not (self.failing or isinstance(error, MalformedUpdates))


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


async def _register_commands(application: Application) -> None:
    """Telegram's command menu lists what /help lists; a failure is a warning, the bot runs anyway."""
    try:
        await application.bot.set_my_commands([BotCommand(command, words) for command, words in COMMANDS])
    except TelegramError as exc:
        logger.warning("Could not register the bot's commands with Telegram: %s", exc)


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
    # httpx logs every request URL (token redacted), Haystack every pipeline step and tornado every
    # malformed request to the webhook at INFO: noise here, and a flood of it under attack.
    for chatty in ("httpx", "haystack", "tornado"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from retrieval.engine import QAEngine  # loads models: imported only when the bot really starts

    engine = QAEngine(settings)
    if engine.is_empty():
        logger.info("The index is empty: indexing index.corpus first")
        for skipped in engine.index_corpus().skipped:
            logger.warning("Skipped %s: %s", skipped.path, skipped.reason)
    engine.warm_up()
    try:
        return run_bot(settings, engine, token, webhook_url=webhook_url, listen=listen, port=port)
    except QabotError:
        raise
    except Exception as exc:  # PTB's messages may quote the token: the traceback goes to the (redacted) log
        logger.error("The Telegram bot stopped on an unexpected error", exc_info=True)
        reason = " ".join(redact_in_logs(token).redact(str(exc)).split())
        raise QabotError(f"the Telegram bot stopped on an unexpected {type(exc).__name__}: {reason}") from None
