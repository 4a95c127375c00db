"""Articles from the web: a fetched page → an article Document (trafilatura), a fetched feed → its entries (feedparser).

An article's source is its canonical URL (the page's own `<link rel="canonical">` or `og:url` when
it is on the same host, else the address it was served from); `published` is its date (YYYY-MM-DD)
from the page, else from the feed entry.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import feedparser
import trafilatura
from haystack import Document

from retrieval.ingest.articles import document_for
from retrieval.ingest.fetch import Fetched, FetchError


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a feed: the article's link, and what tells a changed entry from a seen one."""

    link: str
    title: str = ""
    published: str = ""
    stamp: str = ""
    moment: str = ""  # when it was published (else updated), as YYYY-MM-DDTHH:MM:SS (UTC), for ordering


def is_url(text: str) -> bool:
    """True for anything with a scheme (http://, https://, file://...): it is fetched (or refused), not read."""
    return "://" in text


def _canonical(page_url: str, found: str | None) -> str:
    """The page's canonical URL when it is on the page's own host: another host could overwrite its articles."""
    if found:
        candidate = urljoin(page_url, found)
        parts, page = urlsplit(candidate), urlsplit(page_url)
        if parts.scheme in ("http", "https") and parts.hostname == page.hostname and parts.port == page.port:
            return candidate.split("#")[0]
    return page_url.split("#")[0]


def article_from_page(fetched: Fetched, fallback_title: str = "", fallback_date: str = "") -> Document:
    """The article on a fetched page (text, title, author, date, canonical URL); FetchError when it has none."""
    extracted = trafilatura.bare_extraction(
        fetched.body, url=fetched.url, with_metadata=True, include_comments=False, include_tables=False
    )
    text = (getattr(extracted, "text", None) or "").strip() if extracted is not None else ""
    if not text:
        raise FetchError("no article text found on the page")
    url = _canonical(fetched.url, getattr(extracted, "url", None))
    title = (getattr(extracted, "title", None) or fallback_title or url).strip()
    first, _, rest = text.partition("\n")
    if first.strip() == title and rest.strip():  # the headline is the title; keep it out of the sentences
        text = rest.strip()
    published = (getattr(extracted, "date", None) or fallback_date or "")[:10]
    document = document_for(
        text,
        title=title,
        source=url,
        file_hash=hashlib.sha256(f"{title}\n{published}\n{text}".encode()).hexdigest(),
    )
    document.meta.update(url=url, published=published, fetched=time.strftime("%Y-%m-%d"))
    author = getattr(extracted, "author", None)
    if author:
        document.meta["author"] = author
    return document


def _entry_time(entry: feedparser.FeedParserDict, layout: str) -> str:
    """When the entry was published (else updated), in `layout`; "" when it says neither."""
    parsed = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    return time.strftime(layout, parsed) if parsed else ""


def newest_first(entries: list[FeedEntry], most: int) -> list[FeedEntry]:
    """The `most` newest entries, newest first; undated entries after the dated ones, in the feed's order."""
    return sorted(entries, key=lambda entry: entry.moment, reverse=True)[:most]


def feed_entries(fetched: Fetched) -> list[FeedEntry]:
    """The entries of an RSS or Atom feed, newest links resolved against the feed's URL."""
    # The response's headers (Content-Type and its charset above all): without them feedparser calls
    # every feed "no Content-type specified" and guesses the encoding.
    headers = {**fetched.headers, "content-location": fetched.url}
    parsed = feedparser.parse(fetched.body, response_headers=headers)
    entries = []
    for entry in parsed.entries:
        link = entry.get("link") or (entry.get("id") if is_url(entry.get("id", "")) else "")
        if not link:
            continue
        # dict.get: feedparser's own get() maps a missing "updated" to "published", with a warning.
        stamp = dict.get(entry, "updated") or dict.get(entry, "published") or ""
        entries.append(
            FeedEntry(
                urljoin(fetched.url, link),
                entry.get("title", ""),
                _entry_time(entry, "%Y-%m-%d"),
                stamp,
                _entry_time(entry, "%Y-%m-%dT%H:%M:%S"),
            )
        )
    if not entries and (parsed.bozo or not parsed.version):
        error = str(getattr(parsed, "bozo_exception", "") or "no feed found").splitlines()[0]
        raise FetchError(f"not a valid RSS or Atom feed ({error})")
    return entries
