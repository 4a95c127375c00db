"""A stand-in for the Telegram Bot API, on 127.0.0.1, for end-to-end tests of the real bot.

`BotApiStandIn` answers what python-telegram-bot asks at start-up (getMe, deleteWebhook, ...),
hands out queued updates from getUpdates (long polling, honouring `offset`), and records every
call (sendMessage, sendChatAction, editMessageReplyMarkup, answerCallbackQuery, ...) so tests can
assert on what the bot sent. Faults can be injected per method: an HTTP error status (502, 409,
429 with retry_after, ...) or a stall, for a number of calls. `BotThread` runs the bot's
`serve()` in its own thread and event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

# Parameters PTB sends as plain strings; every other form value is JSON.
_STRING_PARAMS = {
    "text",
    "caption",
    "callback_query_id",
    "action",
    "parse_mode",
    "url",
    "secret_token",
    "inline_message_id",
    "description",
    "short_description",
    "name",
}
# What Telegram's HTML parse mode accepts (https://core.telegram.org/bots/api#html-style).
_TELEGRAM_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji",
    "code", "pre", "blockquote",
}  # fmt: skip
# The attributes Telegram reads on each tag; any other attribute is a sign of injected markup.
_TELEGRAM_ATTRIBUTES = {"a": {"href"}, "span": {"class"}, "tg-emoji": {"emoji-id"}, "code": {"class"}}
_TELEGRAM_ATTRIBUTES |= {"blockquote": {"expandable"}}
_TELEGRAM_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
MESSAGE_LIMIT = 4096
# Questions the seed article answers, for tests that ask many.
SEED_QUESTIONS = [
    "Who declared the talks dead?",
    "What did Pompeo say about the talks?",
    "How long has the war in Afghanistan lasted?",
    "Who is the US Secretary of State?",
    "What did Mark Esper negotiate?",
]
# Long polls never hold a request longer than this, whatever the client asks.
MAX_POLL_SECONDS = 15.0


@dataclass(frozen=True)
class ApiCall:
    """One request the bot made: the method and its decoded parameters."""

    number: int
    method: str
    params: dict[str, Any]
    result: Any = None
    error: str = ""

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def visible_text(self) -> str:
        """The text as the user sees it (tags applied, entities decoded)."""
        return telegram_html_to_text(self.text) if self.params.get("parse_mode") == "HTML" else self.text

    @property
    def reply_to(self) -> int | None:
        """The message id this message replies to, if any."""
        reply = self.params.get("reply_parameters") or {}
        return reply.get("message_id", self.params.get("reply_to_message_id"))

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.params.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]


@dataclass
class Fault:
    """Answer `times` calls of `method` with an error status, or stall them `stall` seconds first.

    With `payload`, the calls are answered 200 with that JSON value instead, whatever it holds.
    """

    method: str
    status: int = 0
    description: str = ""
    times: int = 1
    retry_after: int | None = None
    stall: float = 0.0
    payload: Any = None


@dataclass
class _State:
    # (update_id, what getUpdates serves): raw entries are served as they are, maybe without their id.
    updates: list[tuple[int, Any]] = field(default_factory=list)
    calls: list[ApiCall] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    chat_types: dict[int, str] = field(default_factory=dict)


class BotApiStandIn:
    """A Bot API server for one token on a random free port of 127.0.0.1."""

    def __init__(self, token: str, *, bot_id: int = 4242, username: str = "qabot_test_bot") -> None:
        self.token = token
        self.bot_user = {"id": bot_id, "is_bot": True, "first_name": "QA bot", "username": username}
        self._state = _State()
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._update_ids: dict[int, int] = {}
        self._received: Counter[str] = Counter()
        self._closing = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="bot-api-standin", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/bot"

    def start(self) -> BotApiStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        with self._changed:
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> BotApiStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- What users do. -----------------------------------------------------------------------------

    def user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": f"User {user_id}", "language_code": "en"}

    def message(
        self,
        chat_id: int,
        *,
        user_id: int | None = None,
        chat_type: str = "",
        reply_to: dict[str, Any] | None = None,
        **content: Any,
    ) -> dict[str, Any]:
        """A message from a user (content: text=..., sticker=..., entities=...), not yet sent."""
        chat_type = chat_type or ("private" if chat_id > 0 else "supergroup")
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = f"User {chat_id}"
        else:
            chat["title"] = f"Group {chat_id}"
        message = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self.user(user_id if user_id is not None else chat_id),
            **content,
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        with self._changed:
            self._state.chat_types[chat_id] = chat_type
        return message

    def send(self, chat_id: int, **kwargs: Any) -> dict[str, Any]:
        """Queues a message from a user for getUpdates (arguments as for `message`); returns it."""
        message = self.message(chat_id, **kwargs)
        self._update_ids[message["message_id"]] = self.push_update({"message": message})
        return message

    def update_id(self, message: dict[str, Any]) -> int:
        """The id of the update that delivered `message`."""
        return self._update_ids[message["message_id"]]

    def send_text(self, chat_id: int, text: str, **kwargs: Any) -> dict[str, Any]:
        """Queues a text message; commands (`/ask ...`) and @mentions get entities as in Telegram."""
        return self.send(chat_id, **text_content(text), **kwargs)

    def ask(self, chat_id: int, text: str, count: int = 1, **kwargs: Any) -> list[ApiCall]:
        """Sends a text message and returns the bot's `count` replies, checked to be accepted."""
        replies = self.wait_for_replies(chat_id, self.send_text(chat_id, text, **kwargs), count)
        assert [reply.error for reply in replies] == [""] * len(replies)
        return replies

    def send_sticker(self, chat_id: int, **kwargs: Any) -> dict[str, Any]:
        sticker = {
            "file_id": "sticker-file",
            "file_unique_id": "sticker-unique",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return self.send(chat_id, sticker=sticker, **kwargs)

    def press(self, bot_message: ApiCall, data: str, user_id: int) -> int:
        """A user presses the inline button with `data` under a message the bot sent."""
        query = {
            "id": f"query-{next(self._ids)}",
            "from": self.user(user_id),
            "chat_instance": "chat-instance",
            "data": data,
            "message": bot_message.result,
        }
        return self.push_update({"callback_query": query})

    def push_update(self, update: dict[str, Any]) -> int:
        """Queues `update` for getUpdates, with the next update_id; returns that id."""
        return self.push_raw(lambda update_id: {"update_id": update_id, **update})

    def push_raw(self, entry: Callable[[int], Any] | Any) -> int:
        """Queues any JSON value as an entry of getUpdates' result list, as a faulty server might.

        It takes the next update_id's place (a later offset confirms it) whether or not it carries
        that id; `entry` may be a function of the id. Returns the id.
        """
        with self._changed:
            update_id = next(self._ids)
            self._state.updates.append((update_id, entry(update_id) if callable(entry) else entry))
            self._changed.notify_all()
        return update_id

    def inject(self, fault: Fault) -> None:
        with self._changed:
            self._state.faults.append(fault)

    def revoke_token(self) -> None:
        """As /revoke at BotFather: from now on every request with the old token gets 401 Unauthorized."""
        with self._changed:
            self.token = f"revoked-{self.token}"
            self._changed.notify_all()

    # --- What the bot did. --------------------------------------------------------------------------

    def calls(self, method: str | None = None, chat_id: int | None = None) -> list[ApiCall]:
        with self._changed:
            calls = list(self._state.calls)
        return [
            call
            for call in calls
            if (method is None or call.method == method) and (chat_id is None or call.chat_id == chat_id)
        ]

    def messages(self, chat_id: int) -> list[ApiCall]:
        """The messages the bot sent to a chat, in order (refused ones included)."""
        return self.calls("sendMessage", chat_id)

    def received(self, method: str) -> int:
        """How many calls of `method` have arrived, finished or not (a long poll may still wait)."""
        with self._changed:
            return self._received[method]

    def refused(self) -> list[ApiCall]:
        """Calls answered with an error (injected faults included)."""
        return [call for call in self.calls() if call.error]

    def wait_for(self, condition: Callable[[], Any], timeout: float = 20.0, what: str = "the bot") -> Any:
        """Waits until `condition()` is truthy (re-checked on every call the bot makes) and returns it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = condition()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
                self._changed.wait(min(remaining, 0.5))

    def wait_for_replies(
        self, chat_id: int, message: dict[str, Any], count: int = 1, timeout: float = 20.0
    ) -> list[ApiCall]:
        """Waits for `count` messages replying to `message` in `chat_id` and returns them."""

        def replies() -> list[ApiCall]:
            found = [call for call in self.messages(chat_id) if call.reply_to == message["message_id"]]
            return found if len(found) >= count else []

        return self.wait_for(replies, timeout, f"{count} replies to message {message['message_id']}")

    # --- The HTTP side. -----------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 60  # a keep-alive connection left idle is dropped

            def do_GET(self) -> None:
                self._serve(dict(parse_qsl(urlparse(self.path).query)))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    params = json.loads(body or b"{}")
                else:
                    params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                self._serve(params)

            def _serve(self, raw: dict[str, Any]) -> None:
                status, payload = standin._dispatch(urlparse(self.path).path, raw)
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # request lines carry the token; and tests read the bot's logs, not these

        return Handler

    def _dispatch(self, path: str, raw: dict[str, Any]) -> tuple[int, Any]:
        prefix, _, method = path.rpartition("/")
        if prefix != f"/bot{self.token}":
            return _error(HTTPStatus.UNAUTHORIZED, "Unauthorized")
        params = {key: _decode(key, value) for key, value in raw.items()}
        with self._changed:
            self._received[method] += 1
            self._changed.notify_all()
        fault = self._take_fault(method)
        if fault is not None:
            if fault.stall:
                self._closing.wait(fault.stall)
            if fault.status:
                self._record(method, params, None, fault.description)
                return _error(fault.status, fault.description, fault.retry_after)
            if fault.payload is not None:
                self._record(method, params, None, "malformed answer")
                return 200, fault.payload
        refusal = _check_text(params)
        if refusal:
            self._record(method, params, None, refusal)
            return _error(HTTPStatus.BAD_REQUEST, refusal)
        result = self._result(method, params)
        self._record(method, params, result)
        return 200, {"ok": True, "result": result}

    def _take_fault(self, method: str) -> Fault | None:
        with self._changed:
            for fault in self._state.faults:
                if fault.method == method and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _record(self, method: str, params: dict[str, Any], result: Any, error: str = "") -> None:
        with self._changed:
            self._state.calls.append(ApiCall(len(self._state.calls) + 1, method, params, result, error))
            self._changed.notify_all()

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False}
        if method == "getUpdates":
            return self._updates(params)
        if method in {"sendMessage", "editMessageText", "editMessageReplyMarkup"}:
            return self._bot_message(params)
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        return True

    def _updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), MAX_POLL_SECONDS)
        with self._changed:
            # Updates before `offset` are confirmed: Telegram forgets them.
            self._state.updates = [(number, entry) for number, entry in self._state.updates if number >= offset]
            while not self._state.updates and not self._closing.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return [entry for _, entry in self._state.updates[:limit]]

    def _bot_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        with self._changed:
            chat_type = self._state.chat_types.get(chat_id, "private") if isinstance(chat_id, int) else "channel"
        message: dict[str, Any] = {
            "message_id": params.get("message_id") or next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": self.bot_user,
            "text": params.get("text", ""),
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a stalled call: nothing a test needs to see


def _error(status: int, description: str, retry_after: int | None = None) -> tuple[int, dict[str, Any]]:
    payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        payload["parameters"] = {"retry_after": retry_after}
    return status, payload


class _TelegramHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.text: list[str] = []
        self.open: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TELEGRAM_TAGS:
            raise ValueError(f'unsupported start tag "{tag}"')
        unknown = {name for name, _ in attrs} - _TELEGRAM_ATTRIBUTES.get(tag, set())
        if unknown:
            raise ValueError(f'unsupported attribute "{sorted(unknown)[0]}" on tag "{tag}"')
        self.open.append(tag)
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise ValueError(f'self-closing tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            raise ValueError(f'unexpected end tag "{tag}"')

    def handle_data(self, data: str) -> None:
        if "<" in data or "&" in data:
            raise ValueError("unescaped < or & in text")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in _TELEGRAM_ENTITIES:
            raise ValueError(f"unsupported entity &{name};")
        self.text.append(_TELEGRAM_ENTITIES[name])

    def handle_charref(self, name: str) -> None:
        self.text.append(chr(int(name[1:], 16) if name.lower().startswith("x") else int(name)))


def parse_telegram_html(markup: str) -> tuple[str, list[tuple[str, dict[str, str | None]]]]:
    """The text of a Telegram HTML message and its tags (with attributes) in order.

    ValueError when Telegram would refuse to parse it: an unknown tag or attribute, an unbalanced
    or unclosed tag, an unescaped `<` or `&`, an unknown entity.
    """
    parser = _TelegramHtml()
    parser.feed(markup)
    parser.close()
    if parser.open:
        raise ValueError(f'unclosed tag "{parser.open[-1]}"')
    if parser.rawdata:
        raise ValueError("unterminated markup at the end")
    return "".join(parser.text), parser.tags


def telegram_html_to_text(markup: str) -> str:
    """The text of a Telegram HTML message; ValueError when Telegram would refuse to parse it."""
    return parse_telegram_html(markup)[0]


def _check_text(params: dict[str, Any]) -> str:
    """Telegram's own refusals of a message text: bad HTML, or too long."""
    if "text" not in params:
        return ""
    text = str(params["text"])
    if params.get("parse_mode") == "HTML":
        try:
            text = telegram_html_to_text(text)
        except ValueError as exc:
            return f"Bad Request: can't parse entities: {exc}"
    if not text.strip():
        return "Bad Request: message text is empty"
    if _utf16_len(text) > MESSAGE_LIMIT:
        return "Bad Request: message is too long"
    return ""


def _decode(key: str, value: Any) -> Any:
    if key in _STRING_PARAMS or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def text_content(text: str) -> dict[str, Any]:
    """The `text` and `entities` of a message as Telegram would fill them in (commands, @mentions)."""
    entities = []
    if text.startswith("/"):
        entities.append({"type": "bot_command", "offset": 0, "length": _utf16_len(text.split(" ", 1)[0])})
    for word_start, word in _words(text):
        if word.startswith("@") and len(word) > 1:
            offset = _utf16_len(text[:word_start])
            entities.append({"type": "mention", "offset": offset, "length": _utf16_len(word)})
    return {"text": text, "entities": entities} if entities else {"text": text}


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _words(text: str) -> Iterator[tuple[int, str]]:
    position = 0
    for word in text.split(" "):
        yield position, word.rstrip(",.:;?!")
        position += len(word) + 1


class BotThread:
    """Runs `serve(application, stop, **options)` in a thread with its own event loop."""

    def __init__(self, application: Any, **options: Any) -> None:
        self.application = application
        self.options = options
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="qabot-telegram", daemon=True)

    def _run(self) -> None:
        from bot.telegram.app import serve

        async def main() -> None:
            self._stop = asyncio.Event()
            await serve(self.application, self._stop, **self.options)

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # handed to the test through `error`
            self.error = exc
        finally:
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    def start(self) -> BotThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Asks the bot to stop as SIGTERM would, and waits for it."""
        if self._thread.is_alive():
            deadline = time.monotonic() + 10
            while self._stop is None and time.monotonic() < deadline:
                time.sleep(0.01)
            if self._stop is not None:
                # RuntimeError: the bot already ended on its own and closed its loop.
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the bot did not stop within {timeout} s")

    def join(self, timeout: float = 30.0) -> BaseException | None:
        """Waits for the bot to end on its own; returns what it raised."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the bot did not end within {timeout} s")
        return self.error

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class LogCapture(logging.Handler):
    """Every log record of the process, formatted, tracebacks included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def at_least(self, level: int) -> list[str]:
        """The formatted records of `level` or above."""
        return [line for record, line in zip(self.records, self.lines, strict=True) if record.levelno >= level]


@contextlib.contextmanager
def capturing_logs() -> Iterator[LogCapture]:
    """Captures every record logged (DEBUG and up) while the block runs."""
    root = logging.getLogger()
    capture, level = LogCapture(), root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, timeout: float = 20.0) -> None:
    """Waits until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on port {port} after {timeout} s") from None
            time.sleep(0.05)


def post_update(url: str, update: Any, secret: str, *, body: bytes | None = None) -> int:
    """POSTs `update` (as JSON, or `body` as it is) to a webhook as Telegram would; returns the status."""
    request = urllib.request.Request(
        url,
        data=json.dumps(update).encode() if body is None else body,
        headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


class WatchedEngine:
    """The real engine, with a record of every question asked and the history that came with it."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.asked: list[tuple[str, tuple[Any, ...]]] = []

    def ask(self, question: str, history: Any = ()) -> Any:
        self.asked.append((question, tuple(history)))
        return self.engine.ask(question, history)

    def questions(self) -> list[str]:
        return [question for question, _ in self.asked]

    def __getattr__(self, name: str) -> Any:  # examples(), index_dir, ...: the engine's own
        return getattr(self.engine, name)


@contextlib.contextmanager
def running_bot(
    token: str,
    engine: Any,
    settings_for: Callable[[str], Any],
    *,
    rate_limiter: Any = None,
    **serve_options: Any,
) -> Iterator[tuple[BotApiStandIn, Any]]:
    """A stand-in API and the real bot built by `build_application`, started and, after, stopped.

    `settings_for(base_url)` makes the bot's settings; yields (stand-in, settings).
    """
    from bot.telegram.app import build_application

    with BotApiStandIn(token) as api:
        settings = settings_for(api.base_url)
        application = build_application(settings, engine, token, rate_limiter=rate_limiter)
        runner = BotThread(application, **serve_options).start()
        try:
            started = lambda: api.received("getUpdates") or api.calls("setWebhook")  # noqa: E731
            api.wait_for(started, what="the bot to start")
            yield api, settings
        finally:
            runner.stop()
        assert runner.error is None, f"the bot failed: {runner.error!r}"
