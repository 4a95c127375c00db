"""Fetching web pages that strangers may name, safely: no private addresses, bounded size, time and redirects.

Every hop is checked before any connection: the scheme (http, https), the port (80, 443) and each
address the host name resolves to (only public unicast addresses: see `addresses.py`). The
request then goes to the address that was checked, with the name in the Host header and for TLS,
so no second DNS lookup can lead elsewhere. Redirects are followed here, hop by hop, with the
same checks. Bodies are decompressed here too, counting decoded
bytes, so a gzip bomb stops at the size cap.

A fetch, redirects included, takes `timeout` seconds at most in all, whatever the server does:
see `retrieval/ingest/deadline.py` for how every socket operation keeps to that one deadline.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from retrieval.ingest.addresses import refused_address
from retrieval.ingest.deadline import DeadlinePassed, deadline_of, deadline_transport, within_deadline

# Resolver(host, port) -> the host's IP addresses, as strings.
Resolver = Callable[[str, int], list[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECTS = {301, 302, 303, 307, 308}
# What a page or a feed may be; anything else (images, PDFs, JSON...) is refused.
ACCEPTED_TYPES = ("text/html", "application/xhtml+xml", "text/xml", "application/xml")
ACCEPT = "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,application/xml;q=0.9,text/xml;q=0.9"
USER_AGENT = "qabot/0.1 (news question answering; +https://github.com/)"


class FetchError(Exception):
    """A URL that was refused or could not be fetched; the message is the reason, for the user."""


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (once per hop)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host} ({exc})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class FetchLimits:
    """Caps on one fetch; `allow_private_hosts` lets private addresses and any port through (intranets, tests)."""

    max_bytes: int = 5 * 1024 * 1024
    timeout: float = 10.0
    max_redirects: int = 5
    allow_private_hosts: bool = False


@dataclass(frozen=True)
class Fetched:
    """A fetched page: the URL it was finally served from, its body (decoded bytes), cache validators
    and the response's headers (names in lower case; all but Content-Encoding and Content-Length,
    which describe the transfer), which parsers need too (a charset, say)."""

    url: str
    status: int
    content_type: str = ""
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class _Target:
    url: str  # with the checked address in place of the name
    host_header: str
    sni_hostname: str | None


class SafeFetcher:
    """Fetches http(s) pages within `limits`; every refusal or failure is a FetchError with the reason."""

    def __init__(self, limits: FetchLimits = FetchLimits(), resolver: Resolver = system_resolver) -> None:
        self.limits = limits
        self.resolver = resolver
        # trust_env=False: a proxy from the environment would resolve names itself, past the checks.
        self._client = httpx.Client(
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=deadline_transport(),
        )

    def close(self) -> None:
        self._client.close()

    def check(self, url: str) -> _Target:
        """The checked target of `url`, or FetchError saying why it is refused (before any connection)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise FetchError(f"refused: only http and https URLs are fetched, not {scheme or 'no scheme'}:")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise FetchError("refused: the URL's port is not a number") from None
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise FetchError("refused: the URL has no host")
        if port not in DEFAULT_PORTS.values() and not self.limits.allow_private_hosts:
            raise FetchError(f"refused: port {port} (only 80 and 443; fetch.allow_private_hosts opens others)")
        address = self._checked_address(host, port)
        literal = f"[{address}]" if ":" in address else address
        netloc = f"{literal}:{port}" if parts.port else literal
        host_header = parts.netloc.rpartition("@")[2]  # as written: brackets and port kept, credentials not
        target = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
        sni = host if scheme == "https" and not _is_ip(host) else None
        return _Target(target, host_header, sni)

    def _checked_address(self, host: str, port: int) -> str:
        try:
            addresses = [host] if _is_ip(host) else within_deadline(lambda: self.resolver(host, port), "name lookup")
        except DeadlinePassed:
            raise FetchError(f"timed out resolving {host} (fetch.timeout_seconds = {self.limits.timeout:g})") from None
        if not addresses:
            raise FetchError(f"cannot resolve {host}")
        for text in addresses:
            address = ipaddress.ip_address(text.split("%")[0])
            if refused_address(address) and not self.limits.allow_private_hosts:
                shown = host if host == text else f"{host} ({text})"
                raise FetchError(
                    f"refused: {shown} is a private, loopback, link-local or reserved address "
                    "(fetch.allow_private_hosts opens these)"
                )
        return addresses[0].split("%")[0]

    def fetch(self, url: str, etag: str = "", last_modified: str = "") -> Fetched:
        """GET `url` (following up to `max_redirects` checked redirects); a 304 comes back as not_modified."""
        headers = {"Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        with deadline_of(self.limits.timeout) as deadline:
            for _hop in range(self.limits.max_redirects + 1):
                target = self.check(current)
                try:
                    fetched, location = self._get(current, target, headers, deadline)
                except httpx.TimeoutException:
                    raise FetchError(f"timed out (fetch.timeout_seconds = {self.limits.timeout:g})") from None
                except httpx.HTTPError as exc:
                    if time.monotonic() >= deadline:  # the connection was cut at the deadline
                        raise FetchError(f"timed out (fetch.timeout_seconds = {self.limits.timeout:g})") from None
                    raise FetchError(f"cannot connect ({type(exc).__name__}: {exc})") from None
                if location is None:
                    return fetched
                current = urljoin(current, location)
        raise FetchError(f"more than {self.limits.max_redirects} redirects")

    def _get(self, url: str, target: _Target, headers: dict[str, str], deadline: float) -> tuple[Fetched, str | None]:
        remaining = _remaining(deadline, self.limits.timeout)
        request = self._client.build_request(
            "GET",
            target.url,
            headers={**headers, "Host": target.host_header},
            timeout=httpx.Timeout(remaining),
            extensions={"sni_hostname": target.sni_hostname} if target.sni_hostname else None,
        )
        response = self._client.send(request, stream=True)
        try:
            if response.status_code in REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"HTTP {response.status_code} redirect without a Location")
                return Fetched(url, response.status_code), location
            validators = {
                "etag": response.headers.get("ETag", ""),
                "last_modified": response.headers.get("Last-Modified", ""),
            }
            if response.status_code == 304:
                return Fetched(url, 304, **validators), None
            if response.status_code >= 400:
                raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".strip())
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not (content_type in ACCEPTED_TYPES or content_type.endswith("+xml")):
                raise FetchError(f"not HTML or XML ({content_type or 'no content type'})")
            body = self._read_body(response, deadline)
            headers = {  # the body is kept decoded: its encoding and length on the wire no longer hold
                name.lower(): value
                for name, value in response.headers.items()
                if name.lower() not in ("content-encoding", "content-length")
            }
            return Fetched(url, response.status_code, content_type, body, **validators, headers=headers), None
        finally:
            response.close()

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        """The decoded body, stopped at `max_bytes` decoded bytes and at the deadline."""
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, detected from the header
        elif encoding in ("identity", ""):
            decoder = None
        else:
            raise FetchError(f"unsupported content encoding {encoding}")
        cap = self.limits.max_bytes
        body = bytearray()
        too_big = FetchError(f"bigger than {cap / 1024 / 1024:g} MB (fetch.max_page_mb)")
        for raw in response.iter_raw():  # each piece as it arrives, so the deadline is checked often
            if time.monotonic() > deadline:
                raise FetchError(f"timed out (fetch.timeout_seconds = {self.limits.timeout:g})")
            if decoder is None:
                body += raw
            else:
                data = raw
                while data:  # never inflate more than one byte past the cap
                    try:
                        body += decoder.decompress(data, cap + 1 - len(body))
                    except zlib.error as exc:
                        raise FetchError(f"damaged compressed body ({exc})") from None
                    data = decoder.unconsumed_tail
                    if len(body) > cap:
                        raise too_big
            if len(body) > cap:
                raise too_big
        if decoder is not None:
            try:
                body += decoder.flush()
            except zlib.error as exc:
                raise FetchError(f"damaged compressed body ({exc})") from None
        return bytes(body)


def _remaining(deadline: float, total: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"timed out (fetch.timeout_seconds = {total:g})")
    return left


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True
