"""Refreshing the feeds while the bot runs: PTB's JobQueue starts `web.refresh` every `feeds.refresh_minutes`.

The refresh runs in a worker thread, so answers never wait for it: questions are answered from the
current index while the new one is written, and from the new one once it is live.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from telegram.ext import Application, ContextTypes

from retrieval.errors import QabotError

logger = logging.getLogger(__name__)

# Where the time of the last refresh is kept, in the application's bot_data (for /about).
LAST_REFRESH = "last_refresh"
# The first refresh waits this long after start-up, so that the bot answers from the first second.
FIRST_REFRESH_SECONDS = 5.0


def schedule_feed_refresh(application: Application, engine: Any, minutes: float) -> None:
    """Refresh the feeds every `minutes` (0: never) with the application's JobQueue."""
    web = getattr(engine, "web", None)
    if not minutes or web is None:
        return
    if application.job_queue is None:
        logger.warning("Feeds are not refreshed: install python-telegram-bot[job-queue]")
        return

    async def refresh(context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            report = await asyncio.to_thread(web.refresh)
        except QabotError as exc:
            logger.warning("Refreshing the feeds failed: %s", exc)
            return
        context.bot_data[LAST_REFRESH] = dt.datetime.now(dt.UTC)
        for failure in report.failed:
            logger.warning("Could not fetch %s: %s", failure.path, failure.reason)
        logger.info(
            "Feeds refreshed: %d new, %d changed, %d unchanged, %d failed, %d dropped by age (%.1f s)",
            report.new,
            report.changed,
            report.unchanged,
            len(report.failed),
            report.dropped,
            report.seconds,
        )

    interval = minutes * 60
    application.job_queue.run_repeating(
        refresh, interval=interval, first=min(FIRST_REFRESH_SECONDS, interval), name="refresh feeds"
    )
