"""Secrets (the bot token, the Milvus token): read from the environment or a file, cut out of every log record."""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from retrieval.errors import QabotError
from retrieval.files import FileRefusedError, read_text_file
from retrieval.settings import Settings

logger = logging.getLogger(__name__)

TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
REDACTED = "[REDACTED]"
_MAX_SECRET_BYTES = 64 * 1024


def read_token(settings: Settings, environ: Mapping[str, str] = os.environ) -> str:
    """The bot token from $TELEGRAM_BOT_TOKEN, else from `telegram.token_file`; QabotError (exit 2) when unset."""
    token = read_secret(TOKEN_ENV, settings.telegram.token_file, "Telegram token", "telegram.token_file", environ)
    if not token:
        raise QabotError(f"no Telegram bot token: set {TOKEN_ENV} (or telegram.token_file in the config)", exit_code=2)
    return token


def read_secret(
    variable: str, path: Path | None, what: str, setting: str, environ: Mapping[str, str] = os.environ
) -> str:
    """A secret from $`variable`, else from the file `path` ("" when neither is set).

    Warns when the file is readable by other users; raises QabotError (exit 2) when it cannot be
    read or is empty. Messages name where the secret should be, never the secret itself; once
    read, it is cut out of every log record.
    """
    secret = environ.get(variable, "").strip()
    if not secret and path is not None:
        try:
            secret = read_text_file(path, _MAX_SECRET_BYTES).strip()
            mode = path.stat().st_mode
        except (OSError, FileRefusedError) as exc:
            reason = exc.reason if isinstance(exc, FileRefusedError) else exc.strerror or type(exc).__name__
            raise QabotError(f"cannot read the {what} file {path} ({setting}): {reason}", exit_code=2) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning(
                "The %s file %s is accessible by other users; restrict it with: chmod 600 %s", what, path, path
            )
        if not secret:
            raise QabotError(f"the {what} file {path} is empty; set {variable} or fill it", exit_code=2)
    if secret:
        redact_in_logs(secret)
    return secret


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
