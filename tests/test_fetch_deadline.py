"""Every fetch has one wall-clock deadline, `fetch.timeout_seconds`, that no server behaviour can stretch.

A raw socket server on 127.0.0.1, started by each test, trickles its answer a byte at a time,
each byte well within any single read's timeout; every loop in it is bounded in count and time.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.ingest.feeds import WebIndexer
from retrieval.ingest.fetch import FetchError, FetchLimits, SafeFetcher
from tests.conftest import make_settings

TIMEOUT = 2.0
SLACK = 1.0
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"a" * 200 + b"\r\n"


class TrickleServer:
    """Answers each connection with `answer(path)`: (a pause, bytes sent after it at once, bytes
    trickled one every `interval` seconds), at most `max_seconds` a connection and `max_connections`
    connections in all."""

    def __init__(self, interval: float = 0.25, max_seconds: float = 30.0, max_connections: int = 20) -> None:
        self.interval = interval
        self.max_seconds = max_seconds
        self.max_connections = max_connections
        self.trickled = 0
        self.connections = 0
        self.answer = lambda path: (0.0, b"", HEADERS)
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._threads: list[threading.Thread] = []

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}{path}"

    def __enter__(self) -> TrickleServer:
        accepting = threading.Thread(target=self._accept, daemon=True)
        accepting.start()
        self._threads.append(accepting)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set() and self.connections < self.max_connections:
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            serving = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            serving.start()
            self._threads.append(serving)

    def _serve(self, connection: socket.socket) -> None:
        ends = time.monotonic() + self.max_seconds
        with connection:
            connection.settimeout(2.0)
            try:
                request = connection.recv(65536).decode("latin-1")
                path = request.split(" ")[1] if request.count(" ") >= 2 else "/"
                pause, at_once, trickle = self.answer(path)
                if self._stop.wait(pause):
                    return
                connection.sendall(at_once)
                for byte in trickle:  # bounded: the answer's length, the time limit, the stop
                    if self._stop.wait(self.interval) or time.monotonic() > ends:
                        return
                    connection.sendall(bytes([byte]))
                    self.trickled += 1
            except OSError:
                return  # the client gave up: that is the point


@pytest.fixture()
def trickle() -> Iterator[TrickleServer]:
    with TrickleServer() as server:
        yield server


def deadline_fetcher() -> SafeFetcher:
    return SafeFetcher(FetchLimits(allow_private_hosts=True, timeout=TIMEOUT))


def timed_fetch(fetcher: SafeFetcher, url: str) -> tuple[float, str]:
    started = time.monotonic()
    with pytest.raises(FetchError) as failure:
        fetcher.fetch(url)
    return time.monotonic() - started, str(failure.value)


def test_a_server_trickling_its_headers_is_cut_off_at_the_deadline(trickle):
    seconds, reason = timed_fetch(deadline_fetcher(), trickle.url())
    assert seconds < TIMEOUT + SLACK, seconds
    assert "timed out" in reason and "fetch.timeout_seconds = 2" in reason
    assert trickle.trickled >= 3  # it did trickle: no single read ever waited its own timeout


def test_a_server_trickling_its_status_line_or_body_is_cut_off_at_the_deadline(trickle):
    body_head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n<html>"
    for answer in [(0.0, b"", b"HTTP/1.1 200 OK\r\n" * 20), (0.0, body_head, b"<p>" * 1000)]:
        trickle.answer = lambda path, answer=answer: answer
        seconds, reason = timed_fetch(deadline_fetcher(), trickle.url())
        assert seconds < TIMEOUT + SLACK, (answer[1][:20], seconds)
        assert "timed out" in reason


def test_redirect_hops_share_one_deadline(trickle):
    """Each hop answers whole after 0.75 s, well within a hop's own timeout; five of them are not."""
    redirect = b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    trickle.answer = lambda path: (0.75, redirect, b"")
    seconds, reason = timed_fetch(deadline_fetcher(), trickle.url())
    assert seconds < TIMEOUT + SLACK, seconds
    assert "timed out" in reason
    assert 2 <= trickle.connections <= 3  # two hops answered, the third cut off


def test_a_slow_name_lookup_counts_against_the_deadline():
    def slow_resolver(host: str, port: int) -> list[str]:
        time.sleep(TIMEOUT + 3)  # a hostile name server answering late
        return ["93.184.216.34"]

    fetcher = SafeFetcher(FetchLimits(timeout=TIMEOUT), resolver=slow_resolver)
    seconds, reason = timed_fetch(fetcher, "http://slow-dns.example/")
    assert seconds < TIMEOUT + SLACK, seconds
    assert "timed out resolving slow-dns.example" in reason


def test_a_refresh_never_holds_the_refresh_lock_past_the_deadline(trickle, tmp_path: Path):
    """A feed trickling its headers: the refresh ends by the deadline, and an /add waiting for the
    refresh lock gets it by then too."""
    settings = make_settings(
        tmp_path / "index",
        fetch={"allow_private_hosts": True, "timeout_seconds": TIMEOUT},
        feeds={"urls": [trickle.url("/feed.rss")]},
    )
    indexer = WebIndexer(settings, sources=dict, write=lambda *args: pytest.fail("nothing to write"))
    waited: list[float] = []

    def add_meanwhile() -> None:
        time.sleep(0.2)
        started = time.monotonic()
        indexer.index_urls([])  # takes the refresh lock, as an admin's /add does
        waited.append(time.monotonic() - started)

    adding = threading.Thread(target=add_meanwhile, daemon=True)
    started = time.monotonic()
    adding.start()
    report = indexer.refresh()
    seconds = time.monotonic() - started
    adding.join(TIMEOUT + SLACK + 1)
    assert seconds < TIMEOUT + SLACK, seconds
    assert [f.reason for f in report.failed] == ["timed out (fetch.timeout_seconds = 2)"]
    assert waited and waited[0] < TIMEOUT + SLACK, waited
