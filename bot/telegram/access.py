"""Who may ask and how fast: the allowlist, the per-user rate limits, and per-chat ordering of updates."""

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


class RateLimit:
    """At most `per_minute` actions (questions, messages) of one user in any sliding minute."""

    def __init__(self, per_minute: int, clock: Any = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._done: dict[int, deque[float]] = {}

    def wait_seconds(self, user_id: int) -> float:
        """0 when the user may act now (the action is counted), else seconds until they may."""
        now = self._clock()
        done = self._done.setdefault(user_id, deque())
        while done and now - done[0] >= 60:
            done.popleft()
        if len(done) >= self.per_minute:
            return 60 - (now - done[0])
        done.append(now)
        if len(self._done) > 10_000:  # forget idle users now and then
            self._done = {user: times for user, times in self._done.items() if times and now - times[-1] < 60}
        return 0.0

    def refund(self, user_id: int) -> None:
        """Uncounts the user's latest action (a message the engine answered in its own words)."""
        done = self._done.get(user_id)
        if done:
            done.pop()


class CoolDownNotices:
    """One notice per user and cool-down, whichever limit the user ran into: a flood gets one reply."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._quiet_until: dict[int, float] = {}

    def due(self, user_id: int, wait: float) -> bool:
        """True for a user's first refusal in a cool-down of `wait` seconds (tell them once), then False."""
        now = self._clock()
        if now < self._quiet_until.get(user_id, 0.0):
            return False
        if len(self._quiet_until) > 10_000:  # forget cool-downs that are over now and then
            self._quiet_until = {user: until for user, until in self._quiet_until.items() if until > now}
        self._quiet_until[user_id] = now + wait
        return True


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
