"""One wall-clock deadline for a whole fetch: name lookup, connecting, TLS, the request, the headers
and the body of every redirect hop together.

httpx's timeouts hold per phase and per socket operation: a server that sends its headers one
byte every 2 s never lets a single read wait 10 s, so it could hold a fetch (and the refresh
waiting on it) for as long as it liked. Here every blocking socket operation of the HTTP client is
given the time left until the fetch's deadline, never more: the client's connections come from a
network backend wrapping httpcore's own, whose `connect_tcp`, `start_tls`, `read` and `write`
shrink their timeout to what is left and fail as a timeout once nothing is. A trickle then gains
the server nothing: the read that waits past the deadline is cut at the deadline. Python's TLS
handshake, TLS reads and `sendall` already take their timeout as a total, not per byte.

Why not a watchdog or a worker: a watchdog thread has no socket to close before the headers are in
(httpx hands the connection out with the response), and closing a socket does not wake a thread
blocked reading it everywhere; a worker with a deadline frees the caller, but leaves the worker
and its connection held for as long as the server trickles. Cutting each operation ends the
fetch in its own thread, its connection closed, at the deadline.

The deadline belongs to the thread running the fetch (`deadline_of`), so that fetchers shared by
worker threads, and their pooled connections, each keep to the deadline of the fetch using them.
The one call outside the client, the resolver, runs in a daemon thread that is waited on only
until the deadline (`within_deadline`).
"""

from __future__ import annotations

import contextlib
import threading
import time
import typing
from collections.abc import Callable, Iterator

import httpcore
import httpx

T = typing.TypeVar("T")

_current = threading.local()


class DeadlinePassed(Exception):  # noqa: N818 - a state, like TimeoutError
    """The fetch's deadline passed before a call outside the HTTP client (the resolver) returned."""


@contextlib.contextmanager
def deadline_of(seconds: float) -> Iterator[float]:
    """Within the block, this thread's fetching ends `seconds` from now; yields the deadline (monotonic)."""
    previous = getattr(_current, "deadline", None)
    _current.deadline = time.monotonic() + seconds
    try:
        yield _current.deadline
    finally:
        _current.deadline = previous


def _left(timeout: float | None, timed_out: type[Exception]) -> float | None:
    """`timeout`, cut to the time left before this thread's deadline; `timed_out` once none is left."""
    deadline = getattr(_current, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise timed_out("the fetch's deadline passed")
    return left if timeout is None else min(timeout, left)


def within_deadline(call: Callable[[], T], what: str) -> T:
    """`call()`, waited on only until this thread's deadline (DeadlinePassed after it).

    It runs in a daemon thread: a blocked system call cannot be interrupted, but it no longer
    holds the fetch (the system resolver gives up by itself after its own timeouts).
    """
    if getattr(_current, "deadline", None) is None:
        return call()
    outcome: list[tuple[bool, typing.Any]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread as it is
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name=f"qabot-{what}", daemon=True)
    worker.start()
    worker.join(_left(None, DeadlinePassed))
    if not outcome:
        raise DeadlinePassed(f"{what} did not finish before the deadline")
    finished, value = outcome[0]
    if not finished:
        raise value
    return typing.cast(T, value)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by the deadline of the fetch using it."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: typing.Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        secured = self._stream.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(secured)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, handing out `_DeadlineStream`s and connecting by the deadline too."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[typing.Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def deadline_transport() -> httpx.HTTPTransport:
    """httpx's own transport (no proxy, environment ignored), its connections made by `_DeadlineBackend`."""
    transport = httpx.HTTPTransport(trust_env=False)
    if not isinstance(getattr(transport, "_pool", None), httpcore.ConnectionPool):  # httpx changed its insides
        raise RuntimeError("httpx.HTTPTransport no longer keeps an httpcore.ConnectionPool in _pool")
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_DeadlineBackend(),
    )
    return transport
