"""Who may ask and how fast: the allowlist, the per-user rate limit, and per-chat ordering of updates."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Sequence
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


def allowed(update: Update, allowlist: Sequence[int]) -> bool:
    """True when the allowlist is empty or names the update's user or chat."""
    if not allowlist:
        return True
    ids = {entity.id for entity in (update.effective_user, update.effective_chat) if entity is not None}
    return bool(ids & set(allowlist))


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
