"""Fetching URLs that strangers send: refused before any connection when they lead to a private place.

SSRF refusals run with `allow_private_hosts` off and a tripwire on every socket connection; the
caps (size, redirects, time, content type) run against the local news site with it on.
"""

from __future__ import annotations

import socket

import pytest

from retrieval.ingest.fetch import FetchError, FetchLimits, SafeFetcher
from tests.web_standin import NewsSite


class Resolver:
    """A test resolver: names to addresses, and a record of what was asked (no DNS traffic)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.table[host]


@pytest.fixture()
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records (and blocks) every attempt to open a network connection."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.fixture(scope="module")
def site():
    with NewsSite() as news:
        news.slow_seconds = 6.0  # twice the fetcher's time limit below
        yield news


def strict_fetcher(resolver: Resolver | None = None) -> SafeFetcher:
    return SafeFetcher(FetchLimits(), resolver=resolver or Resolver({}))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "private, loopback"),
        ("http://10.0.0.1/news", "private, loopback"),
        ("http://169.254.169.254/latest/meta-data/", "private, loopback"),
        ("http://[::1]/", "private, loopback"),
        ("http://[::ffff:127.0.0.1]/", "private, loopback"),
        ("http://[fd00:ec2::254]/", "private, loopback"),
        ("http://224.0.0.1/", "private, loopback"),
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.org/feed.xml", "only http and https"),
        ("http://example.org:8080/news", "port 8080"),
        ("https://example.org:22/", "port 22"),
    ],
)
def test_private_addresses_other_schemes_and_ports_are_refused_before_connecting(no_connections, url, reason):
    resolver = Resolver({"example.org": ["93.184.216.34"]})
    with pytest.raises(FetchError, match=reason):
        strict_fetcher(resolver).fetch(url)
    assert no_connections == []
    assert resolver.asked == []  # refused on the URL alone: no name was even looked up


def test_a_public_name_resolving_to_loopback_is_refused(no_connections):
    resolver = Resolver({"news.example": ["127.0.0.1"]})
    with pytest.raises(FetchError, match=r"news\.example \(127\.0\.0\.1\) is a private"):
        strict_fetcher(resolver).fetch("https://news.example/today")
    assert resolver.asked == ["news.example"]
    assert no_connections == []


def test_a_name_with_any_private_address_among_public_ones_is_refused(no_connections):
    resolver = Resolver({"mixed.example": ["93.184.216.34", "10.1.2.3"]})
    with pytest.raises(FetchError, match="private"):
        strict_fetcher(resolver).fetch("http://mixed.example/")
    assert no_connections == []


def test_a_redirect_to_a_private_address_is_refused_at_that_hop(site):
    """The first hop is let through (the local site stands for a public one); the redirect is checked again."""
    site.pages["/redirect-to-metadata"] = (302, "text/html", b"", {"Location": "http://169.254.169.254/latest/"})
    public_site = Resolver({"public.example": ["127.0.0.1"]})

    class FirstHopOnly(SafeFetcher):
        hops = 0

        def check(self, url):
            FirstHopOnly.hops += 1
            if FirstHopOnly.hops == 1:
                return SafeFetcher(FetchLimits(allow_private_hosts=True), resolver=public_site).check(url)
            return super().check(url)

    guarded = FirstHopOnly(FetchLimits(), resolver=public_site)
    with pytest.raises(FetchError, match="169.254.169.254 is a private"):
        guarded.fetch(f"http://public.example:{site.base.rsplit(':', 1)[1]}/redirect-to-metadata")
    assert site.requests["/redirect-to-metadata"] == 1
    assert FirstHopOnly.hops == 2


def test_the_request_goes_to_the_checked_address_with_the_name_as_host(site):
    """The name is resolved once, by the injected resolver; the system resolver could not find it."""
    site.page("/hello", b"<html><body><p>hello</p></body></html>")
    resolver = Resolver({"news.invalid": ["127.0.0.1"]})
    fetcher = SafeFetcher(FetchLimits(allow_private_hosts=True), resolver=resolver)
    port = site.base.rsplit(":", 1)[1]
    page = fetcher.fetch(f"http://news.invalid:{port}/hello")
    assert page.status == 200 and b"hello" in page.body
    assert page.url == f"http://news.invalid:{port}/hello"
    assert resolver.asked == ["news.invalid"]


@pytest.fixture()
def local_fetcher() -> SafeFetcher:
    return SafeFetcher(FetchLimits(allow_private_hosts=True, timeout=3.0))


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/bad/404", "HTTP 404"),
        ("/bad/500", "HTTP 500"),
        ("/bad/image", r"not HTML or XML \(image/png\)"),
        ("/bad/loop", "more than 5 redirects"),
        ("/bad/bomb", "bigger than 5 MB"),
        ("/bad/slow", "timed out"),
    ],
)
def test_bad_pages_fail_with_their_reason(site, local_fetcher, path, reason):
    with pytest.raises(FetchError, match=reason):
        local_fetcher.fetch(site.url(path))


def test_a_redirect_loop_stops_after_five_redirects(site, local_fetcher):
    before = site.requests["/bad/loop"]
    with pytest.raises(FetchError):
        local_fetcher.fetch(site.url("/bad/loop"))
    assert site.requests["/bad/loop"] - before == 6  # the first request and five redirects
