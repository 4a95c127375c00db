"""The admins' commands (`telegram.admins`): /list (also /sources_list) the newest sources with a short id,
/remove ID, and /feeds. Anyone else gets the same polite refusal as for /add; every admin action is
logged with the admin's user id.

The engine's work (reading the source table, removing an article) runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from pathlib import PurePath
from typing import Any

from telegram import Update
from telegram.ext import CommandHandler, ContextTypes, filters

from bot.telegram.format import Block, Span, plain, to_chunks
from bot.telegram.messages import message_of, send_chunks
from bot.telegram.refresh import LAST_REFRESH
from bot.words import plural
from retrieval.errors import QabotError
from retrieval.ingest.indexing import short_id

logger = logging.getLogger(__name__)

NOT_ADMIN = "Sorry, only the bot's admins can {what}; you can ask me about the articles I have."
MANAGE = "list, remove and add articles or see the feeds"
NEWEST_SOURCES = 20
NO_SOURCES = "I have no articles yet: send me a link to one, or /add URL."
EMPTY_REMOVE = "Write the source's id after /remove, for example: /remove 1a2b3c4d (/list shows the ids)."
UNKNOWN_ID = "I have no source with the id {id}; /list shows the ids."
REMOVED = "Removed “{title}” ({id}); {passages} left in the index."
NOT_REMOVED = "Sorry, I could not remove {id}: {reason}."
NO_FEEDS = "No feeds yet: add one with `qabot feeds add URL` on the bot's machine, or in the config's [feeds] urls."


def _title(source: str, entry: dict[str, Any]) -> str:
    return str(entry.get("title") or "") or (source if "://" in source else PurePath(source).name)


def newest_sources(table: dict[str, dict[str, Any]], n: int = NEWEST_SOURCES) -> list[tuple[str, dict[str, Any]]]:
    """The `n` newest articles: by date, then by the day fetched; undated ones last."""

    def newness(item: tuple[str, dict[str, Any]]) -> tuple[str, str, str]:
        source, entry = item
        return str(entry.get("published") or ""), str(entry.get("fetched") or ""), source

    return sorted(table.items(), key=newness, reverse=True)[:n]


def source_lines(table: dict[str, dict[str, Any]]) -> list[str]:
    """/list: one line per source, newest first: id, title, date."""
    if not table:
        return [NO_SOURCES]
    shown = newest_sources(table)
    lines = [f"The newest {len(shown)} of {plural(len(table), 'source')} (id · title · date):"]
    for source, entry in shown:
        date = str(entry.get("published") or "undated")
        lines.append(f"{short_id(source)} · {_title(source, entry)} · {date}")
    lines.append("/remove ID removes one.")
    return lines


def feed_lines(
    urls: list[str], last_refresh: dt.datetime | None, refreshed: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """/feeds: each feed with its last refresh and the articles it brought then (from the feed state),
    and when this bot last refreshed them all."""
    if not urls:
        return [NO_FEEDS]
    lines = [f"{plural(len(urls), 'feed')}:"]
    for url in urls:
        record = (refreshed or {}).get(url)
        if record and record.get("at"):
            when = str(record["at"])[:16].replace("T", " ")
            lines.append(f"• {url} · read {when} UTC · {plural(int(record.get('new', 0)), 'new article')}")
        else:
            lines.append(f"• {url} · not read yet")
    if last_refresh is not None:
        lines.append(f"Last refreshed: {last_refresh.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC.")
    else:
        lines.append("Not refreshed since the bot started.")
    return lines


async def admin_only(update: Update, admins: Any, action: str, what: str) -> bool:
    """True when the sender is an admin (the action is logged with their id); else the polite refusal,
    which says the admins alone can do `what` ("add articles")."""
    user = update.effective_user
    if user is None or user.id not in admins:
        logger.info("Refused to %s for user %s: not an admin", action, user.id if user else None)
        await message_of(update).reply_html(plain(NOT_ADMIN.format(what=what)))
        return False
    logger.info("Admin %s: %s", user.id, action)
    return True


async def _reply_lines(update: Update, lines: list[str]) -> None:
    """Plain-text lines as one reply, or more when they are longer than a Telegram message."""
    await send_chunks(message_of(update), to_chunks(Block((Span(line),)) for line in lines))


class AdminCommands:
    """/list, /remove and /feeds, for `engine` (a `QAEngine`); `admit` is the front end's allowlist check."""

    def __init__(self, engine: Any, admins: Any, admit: Callable[[Update], Awaitable[bool]]) -> None:
        self.engine = engine
        self.admins = admins
        self.admit = admit

    def handlers(self) -> list[CommandHandler]:
        new_message = filters.UpdateType.MESSAGE
        return [
            CommandHandler(["list", "sources_list"], self.list_sources, filters=new_message),
            CommandHandler("remove", self.remove, filters=new_message),
            CommandHandler("feeds", self.feeds, filters=new_message),
        ]

    async def _allowed(self, update: Update, action: str) -> bool:
        return await self.admit(update) and await admin_only(update, self.admins, action, MANAGE)

    async def list_sources(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._allowed(update, "list the sources"):
            table = await asyncio.to_thread(self.engine.store.sources)
            await _reply_lines(update, source_lines(table))

    async def remove(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        wanted = " ".join(context.args or []).strip().lower()
        if not await self._allowed(update, f"remove the source {wanted or '(none named)'}"):
            return
        message = message_of(update)
        if not wanted:
            await message.reply_html(plain(EMPTY_REMOVE))
            return
        table = await asyncio.to_thread(self.engine.store.sources)
        source = next((name for name in table if short_id(name) == wanted), None)
        if source is None:
            await message.reply_html(plain(UNKNOWN_ID.format(id=wanted[:40])))
            return
        try:
            report = await asyncio.to_thread(self.engine.remove_sources, [source])
        except QabotError as exc:
            await message.reply_html(plain(NOT_REMOVED.format(id=wanted, reason=exc)))
            return
        logger.info("Admin %s removed %s", update.effective_user.id if update.effective_user else None, source)
        passages = plural(report.passages_total, "passage")
        await message.reply_html(
            plain(REMOVED.format(title=_title(source, table[source]), id=wanted, passages=passages))
        )

    async def feeds(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await self._allowed(update, "list the feeds"):
            return
        try:
            feeds = self.engine.web.feeds
            urls = await asyncio.to_thread(feeds.urls)
            refreshed = (await asyncio.to_thread(feeds.state))["refreshed"]
        except QabotError as exc:
            await message_of(update).reply_html(plain(f"Sorry, I could not read the feed list: {exc}"))
            return
        lines = feed_lines(urls, context.bot_data.get(LAST_REFRESH), refreshed)
        await _reply_lines(update, lines)
