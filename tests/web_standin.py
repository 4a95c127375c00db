"""A news site on 127.0.0.1 for the tests: an RSS and an Atom feed, dated article pages, and every bad case.

It honours conditional GET (ETag, Last-Modified) on the feeds and counts the requests it answers,
so that a test can tell what a refresh fetched.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import MISSING_READER

# What the pages hold: distinct facts, so that each article answers its own question.
FACTS = [
    ("harbour bridge", "The mayor of Port Ellis opened the new harbour bridge on Saturday morning."),
    ("wind farm", "A wind farm with forty turbines started delivering power to Norrbay on Monday."),
    ("library", "The old town library reopened after a fire, with twelve thousand new books."),
    ("rail strike", "Train drivers in Calder ended their rail strike after nine days of talks."),
    ("marathon", "Lena Ortiz won the Riverside marathon in two hours and twenty minutes."),
]
FILLER = (
    "Officials said more details would follow later in the week. Residents were invited to a public "
    "meeting at the town hall. The council thanked everyone who had taken part in the consultation."
)


def article_html(title: str, body: str, date: str, canonical: str = "") -> bytes:
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    return (
        f"<html><head><title>{title}</title>"
        f'<meta property="article:published_time" content="{date}T08:00:00Z">'
        f'<meta name="author" content="Ann Reporter">{link}</head>'
        f"<body><nav>Home | News | Sport</nav><article><h1>{title}</h1>"
        f"<p>{body}</p><p>{FILLER}</p></article><footer>Copyright Daily News</footer></body></html>"
    ).encode()


RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Daily News</title>'
    "<link>http://example.org/</link><description>News</description>{entries}</channel></rss>",
    "<item><title>{title}</title><link>{link}</link><guid>{link}</guid><pubDate>{pubDate}</pubDate></item>",
)
ATOM = (
    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    "<title>Daily News</title><id>urn:daily</id><updated>2026-11-29T00:00:00Z</updated>{entries}</feed>",
    '<entry><title>{title}</title><link href="{link}"/><id>{link}</id><updated>{updated}</updated></entry>',
)


def rss(items: list[dict[str, str]], kind: tuple[str, str] = RSS) -> bytes:
    """A feed (RSS 2.0, or Atom with kind=ATOM) listing `items` (title, link, pubDate, updated)."""
    document, entry = kind
    return document.format(entries="".join(entry.format(**item) for item in items)).encode()


def atom(items: list[dict[str, str]]) -> bytes:
    return rss(items, ATOM)


def qabot_env(folder: Any, feed: str = "") -> dict[str, str]:
    """The environment for `qabot` fetching from the local site: its own index and data folders under
    `folder`, private hosts allowed, no reader model, and `feed` as the config's feed when given."""
    env = {
        "QABOT_INDEX_DIR": str(folder / "index"),
        "QABOT_DATA_DIR": str(folder / "data"),
        "QABOT_FETCH_ALLOW_PRIVATE_HOSTS": "true",
        "QABOT_MODELS_READER": MISSING_READER,
    }
    return {**env, "QABOT_FEEDS_URLS": feed} if feed else env


def rfc822(date: str) -> str:
    return formatdate(time.mktime(time.strptime(date, "%Y-%m-%d")), usegmt=True)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that hangs up early (the size cap, the time limit) is expected


class NewsSite:
    """The site: `pages[path] = (status, content_type, body, extra headers)`; `requests` counts paths served."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, str, bytes, dict[str, str]]] = {}
        self.requests: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        self.slow_seconds = 3.0
        self.send_etags = True  # off: the site validates with Last-Modified alone
        self.release = threading.Event()  # pages under /held/ are answered only once it is set
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._bad_cases()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> NewsSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def page(self, path: str, body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200) -> str:
        self.pages[path] = (status, content_type, body, {})
        return self.url(path)

    def article(self, path: str, title: str, body: str, date: str) -> str:
        return self.page(path, article_html(title, body, date, canonical=self.url(path)))

    def articles(self, prefix: str, count: int, date: str = "2026-11-28") -> list[dict[str, str]]:
        """`count` articles under `prefix`, each with its own fact; their feed items."""
        items = []
        for number in range(count):
            topic, fact = FACTS[number % len(FACTS)]
            title = f"Story {number}: the {topic}"
            link = self.article(f"{prefix}/{number}", title, f"{fact} This is report number {number}.", date)
            items.append({"title": title, "link": link, "pubDate": rfc822(date), "updated": f"{date}T08:00:00Z"})
        return items

    def feed(self, path: str, body: bytes, kind: str = "application/rss+xml") -> str:
        return self.page(path, body, kind)

    def fetched(self, prefix: str) -> int:
        """Requests answered (not 304) for paths under `prefix`."""
        return sum(n for path, n in self.requests.items() if path.startswith(prefix)) - sum(
            n for path, n in self.not_modified.items() if path.startswith(prefix)
        )

    def _bad_cases(self) -> None:
        self.page("/bad/404", b"gone", status=404)
        self.page("/bad/500", b"oops", status=500)
        self.page("/bad/image", b"\x89PNG\r\n", "image/png")
        self.page("/bad/empty", b"<html><head><title>Nothing</title></head><body><script>x()</script></body></html>")
        self.page("/bad/feed", b"<rss><channel><item><title>broken", "application/rss+xml")
        bomb = gzip.compress(b"<html>" + b" " * (50 * 1024 * 1024))
        self.pages["/bad/bomb"] = (200, "text/html", bomb, {"Content-Encoding": "gzip"})
        self.pages["/bad/loop"] = (302, "text/html", b"", {"Location": "/bad/loop"})
        self.pages["/bad/slow"] = (200, "text/html", b"", {})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with site._lock:
                    site.requests[path] += 1
                    found = site.pages.get(path)
                if path == "/bad/slow":
                    time.sleep(site.slow_seconds)
                if path.startswith("/held/"):
                    site.release.wait(60)
                if found is None:
                    return self._send(404, "text/plain", b"not found", {})
                status, content_type, body, extra = found
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                modified = "Sat, 28 Nov 2026 08:00:00 GMT"
                asked_etag = self.headers.get("If-None-Match")  # it takes precedence over the date
                unchanged = asked_etag == etag if asked_etag else self.headers.get("If-Modified-Since") == modified
                if status == 200 and unchanged:
                    with site._lock:
                        site.not_modified[path] += 1
                    return self._send(304, "", b"", {"ETag": etag})
                validators = {"ETag": etag} if site.send_etags else {}
                headers = {**extra, **validators, "Last-Modified": modified} if status == 200 else extra
                self._send(status, content_type, body, headers)

            def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, Any]) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
