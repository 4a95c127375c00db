"""A feed is parsed with the response's headers: its Content-Type (and charset) come from the server,
so a feed served as application/xml is never "no Content-type specified", and a charset named
only in the header decodes the feed. The local news site on 127.0.0.1 serves the feeds."""

from __future__ import annotations

import pytest

from retrieval.ingest.fetch import FetchError, FetchLimits, SafeFetcher
from retrieval.ingest.web import feed_entries
from tests.conftest import run_qabot
from tests.web_standin import NewsSite, qabot_env, rss

EMPTY_FEED = rss([])
# "Café at the harbour", in Greek
GREEK_TITLE = "\u039a\u03b1\u03c6\u03ad \u03c3\u03c4\u03bf \u03bb\u03b9\u03bc\u03ac\u03bd\u03b9"
GREEK_FEED = (
    '<rss version="2.0"><channel><title>News</title>'
    f"<item><title>{GREEK_TITLE}</title><link>http://example.org/cafe</link></item>"
    "</channel></rss>"
).encode("iso-8859-7")


@pytest.fixture()
def site():
    with NewsSite() as news:
        yield news


def fetch(url: str):
    return SafeFetcher(FetchLimits(allow_private_hosts=True, timeout=5.0)).fetch(url)


@pytest.mark.parametrize("kind", ["application/xml", "text/xml", "application/rss+xml"])
def test_an_empty_feed_served_as_xml_is_a_feed_with_no_entries(site, kind):
    page = fetch(site.feed("/empty.xml", EMPTY_FEED, kind))
    assert page.headers["content-type"] == kind
    assert feed_entries(page) == []


def test_a_broken_feed_served_as_xml_is_reported_with_its_own_error(site):
    page = fetch(site.feed("/broken.xml", b"<rss><channel><item><title>cut", "application/xml"))
    with pytest.raises(FetchError, match="not a valid RSS or Atom feed") as failure:
        feed_entries(page)
    assert "Content-type" not in str(failure.value)


def test_a_charset_named_only_in_the_header_decodes_the_feed(site):
    page = fetch(site.feed("/greek.xml", GREEK_FEED, "application/rss+xml; charset=iso-8859-7"))
    [entry] = feed_entries(page)
    assert entry.title == GREEK_TITLE


def test_qabot_refresh_of_an_empty_application_xml_feed_warns_of_nothing(site, tmp_path):
    feed = site.feed("/empty.xml", EMPTY_FEED, "application/xml")
    env = qabot_env(tmp_path, feed)
    result = run_qabot("refresh", env=env)
    assert "warning:" not in result.stderr and "Content-type" not in result.stdout + result.stderr
    assert "0 failed" in result.stdout, result.stdout + result.stderr
