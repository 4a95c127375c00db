"""The bot's connection to the Bot API: answers retried through network errors, a revoked token
noticed, and each request screened where asked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from telegram.error import NetworkError
from telegram.ext import AIORateLimiter, Application
from telegram.request import HTTPXRequest

logger = logging.getLogger(__name__)

# Sending an answer that fails on a network error (5xx, timeout, dropped connection) is retried this
# many times, after pauses doubling from SEND_FIRST_PAUSE up to SEND_MAX_PAUSE seconds: about 90 s in all.
SEND_RETRIES = 8
SEND_FIRST_PAUSE = 0.5
SEND_MAX_PAUSE = 30.0
# Only what delivers an answer is retried; "typing…" and callback answers are not worth the wait.
RETRIED_METHODS = frozenset({"sendMessage", "editMessageReplyMarkup"})


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


class BotApiRequest(HTTPXRequest):
    """PTB's HTTP requests, reporting a rejected token (PTB's polling loop just ends on one, silently)
    and, for getUpdates, passing each answer through `screen` before PTB parses it.
    """

    def __init__(
        self, rejection: TokenRejection, screen: Callable[[bytes], bytes] | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self._rejection = rejection
        self._screen = screen

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, payload = await super().do_request(*args, **kwargs)
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.NOT_FOUND):
            self._rejection.report(status)
        if status == HTTPStatus.OK and self._screen is not None:
            payload = self._screen(payload)
        return status, payload


class BotApplication(Application):  # type: ignore[type-arg]
    """PTB's Application, plus `token_rejection`, which `serve` watches to stop a bot whose token was revoked."""

    __slots__ = ("token_rejection",)

    def __init__(self, *, token_rejection: TokenRejection, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token_rejection = token_rejection
