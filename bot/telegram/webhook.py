"""The webhook server: takes Telegram's POSTed updates, refusing everything else before reading its body.

python-telegram-bot's own webhook server reads a whole request (up to 100 MB) before it checks the
secret token, so unauthenticated clients could make the bot hold gigabytes. This one checks the path,
the method, the secret and the announced size as soon as the headers arrive, closes refused
connections without reading their bodies, reads at most `MAX_UPDATE_BYTES` of an accepted one, and
serves at most `MAX_CONNECTIONS` connections at once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlparse

import tornado.web
from telegram import Bot
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream

from bot.telegram.updates import UpdateReader

logger = logging.getLogger(__name__)

# Telegram's updates are a few kilobytes; a message's text is at most 4,096 characters.
MAX_UPDATE_BYTES = 1 << 20
# Connections served at once (Telegram is told to open no more); further ones are closed at once.
MAX_CONNECTIONS = 40
# Seconds a connection may take to send its headers, and then its body.
HEADER_SECONDS = 10.0
BODY_SECONDS = 10.0
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(frozen=True)
class Webhook:
    """Webhook mode: Telegram posts updates to `url`, which reaches this process at listen:port."""

    url: str
    listen: str
    port: int
    secret: str

    @property
    def path(self) -> str:
        return "/" + urlparse(self.url).path.strip("/")


class WebhookServer:
    """Serves `webhook.path` on listen:port, putting each update it can read on `update_queue`."""

    def __init__(self, webhook: Webhook, bot: Bot, update_queue: asyncio.Queue[object]) -> None:
        endpoint = _Endpoint(webhook, bot, update_queue, UpdateReader())
        application = tornado.web.Application(
            [(r".*", _UpdateHandler, {"endpoint": endpoint})],
            log_function=lambda handler: None,  # refusals are logged at debug level, by the handler
        )
        self.webhook = webhook
        self._server = _BoundedHTTPServer(
            application,
            max_connections=MAX_CONNECTIONS,
            max_body_size=MAX_UPDATE_BYTES,
            max_buffer_size=2 * MAX_UPDATE_BYTES,
            max_header_size=16 * 1024,
            idle_connection_timeout=HEADER_SECONDS,
            body_timeout=BODY_SECONDS,
        )

    def start(self) -> None:
        """Starts listening; OSError when the address cannot be bound."""
        self._server.listen(self.webhook.port, address=self.webhook.listen)

    async def stop(self) -> None:
        self._server.stop()
        await self._server.close_all_connections()


@dataclass(frozen=True)
class _Endpoint:
    webhook: Webhook
    bot: Bot
    update_queue: asyncio.Queue[object]
    reader: UpdateReader

    def refusal(self, request: Any) -> HTTPStatus | None:
        """Why a request is refused, judged on its headers alone; None when its body may be read."""
        if request.path.rstrip("/") != self.webhook.path.rstrip("/"):
            return HTTPStatus.NOT_FOUND
        if request.method != "POST":
            return HTTPStatus.METHOD_NOT_ALLOWED
        secret = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(secret.encode(), self.webhook.secret.encode()):
            return HTTPStatus.FORBIDDEN
        length = request.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_UPDATE_BYTES:
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        return None


@tornado.web.stream_request_body
class _UpdateHandler(tornado.web.RequestHandler):
    """One POSTed update. Streaming the body lets `prepare` refuse a request before any of it is read."""

    def initialize(self, endpoint: _Endpoint) -> None:
        self.endpoint = endpoint
        self.body = bytearray()
        self.refused = False

    def prepare(self) -> None:
        refusal = self.endpoint.refusal(self.request)
        if refusal is not None:
            logger.debug("Webhook refused a %s request to %s: %s", self.request.method, self.request.path, refusal)
            self.refused = True
            self.set_status(refusal)
            self.finish()  # tornado then closes the connection instead of reading the body

    def data_received(self, chunk: bytes) -> None:
        if not self.refused:  # tornado's max_body_size bounds what arrives here
            self.body += chunk

    async def post(self) -> None:
        try:
            entry = json.loads(self.body)
        except ValueError:
            entry = None
        update = self.endpoint.reader.read(entry, self.endpoint.bot)
        if update is not None:
            await self.endpoint.update_queue.put(update)
        # A skipped update is answered 200 too: Telegram would otherwise deliver it again and again.
        self.set_status(HTTPStatus.OK)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish()  # a bare status, never a traceback page


class _BoundedHTTPServer(HTTPServer):
    """tornado's HTTP server, closing connections beyond `max_connections` as soon as they are accepted."""

    def initialize(self, *args: Any, max_connections: int, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self.open_connections = 0

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        if self.open_connections >= self.max_connections:
            logger.debug("Webhook closed a connection from %s: %d are open", address[0], self.open_connections)
            stream.close()
            return
        self.open_connections += 1
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        self.open_connections -= 1
        super().on_close(server_conn)
