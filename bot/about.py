"""What the bot knows, for `/about`: how many articles from where, the newest, the last refresh, the reader.

Read from what the engine already offers: the store's source table (titles, dates, web addresses,
the day each web article was last fetched), the feed list, and the reader model setting.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from bot.words import plural
from retrieval.errors import QabotError

logger = logging.getLogger(__name__)


def _is_web(source: str, entry: dict[str, Any]) -> bool:
    return bool(entry.get("url")) or source.startswith(("http://", "https://"))


def about_lines(engine: Any, last_refresh: dt.datetime | None = None) -> list[str]:
    """Plain-text lines about the index; `last_refresh` is when this process last read the feeds."""
    sources: dict[str, dict[str, Any]] = engine.store.sources()
    web = sum(_is_web(source, entry) for source, entry in sources.items())
    files = len(sources) - web
    try:
        feeds = len(engine.web.feeds.urls())
    except QabotError as exc:  # a broken feeds.json: the operator's to fix, not worth failing /about
        logger.warning("/about could not read the feed list: %s", exc)
        feeds = None
    parts = [plural(files, "file"), f"{web} from the web"]
    feed_words = "feeds unknown" if feeds is None else plural(feeds, "feed")
    lines = [f"I have read {plural(len(sources), 'article')}: {' and '.join(parts)} ({feed_words})."]
    published = [str(entry["published"]) for entry in sources.values() if entry.get("published")]
    if published:
        lines.append(f"Newest article: {max(published)}.")
    fetched = [str(entry["fetched"]) for entry in sources.values() if entry.get("fetched")]
    if last_refresh is not None:
        lines.append(f"Feeds last refreshed: {last_refresh.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC.")
    elif fetched:
        lines.append(f"Web articles last fetched: {max(fetched)}.")
    elif feeds:
        lines.append("The feeds have not been read yet.")
    reader = engine.settings.models.reader
    if engine.answer_kind == "extractive":
        lines.append(f"Answers are found by the reader model {reader}.")
    else:
        lines.append(f"The reader model {reader} is not loaded, so answers are the best-matching sentences.")
    return lines
