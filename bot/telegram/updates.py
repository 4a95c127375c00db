"""Reading updates defensively: one the bot cannot read is logged once, by its update_id, and skipped.

Telegram's own servers send well-formed updates, but self-hosted Bot API servers and proxies may
not, and python-telegram-bot stops on the first update it cannot parse: polling re-fetches it
forever, and a webhook answers it with a traceback. `UpdateReader` checks each update first (PTB's
parser, then the types of the fields the bot reads) and never logs an update's content.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from telegram import Bot, Message, Update
from telegram.error import NetworkError

logger = logging.getLogger(__name__)

# Skipped updates (by update_id or digest) remembered so that each is logged once.
REMEMBERED_SKIPS = 1024


class MalformedUpdates(NetworkError):
    """getUpdates gave nothing the bot can read; PTB's polling loop retries it after growing pauses."""


class UpdateReader:
    """Turns what the Bot API sent into `Update`s, skipping (and logging once) what is not one."""

    def __init__(self) -> None:
        self._logged: OrderedDict[object, None] = OrderedDict()

    def read(self, entry: object, bot: Bot | None = None) -> Update | None:
        """The update in `entry` (decoded JSON), or None when the bot cannot read it (logged once)."""
        update_id = entry.get("update_id") if isinstance(entry, dict) else None
        if not _is_int(update_id):
            self._skip(_digest(entry), "Skipped an update without a valid update_id")
            return None
        try:
            update = Update.de_json(entry, bot)
            wrong = next((name for name, value, kind in _fields_read(update) if not isinstance(value, kind)), None)
        except Exception as exc:  # PTB's parser raises whatever the data provokes
            wrong = f"{exc.args[0]} is missing" if isinstance(exc, KeyError) else type(exc).__name__
        else:
            if wrong is None:
                return update
            wrong = f"{wrong} has the wrong type"
        self._skip(update_id, f"Skipped update {update_id}: it is not a valid Telegram update ({wrong})")
        return None

    def screen_updates(self, payload: bytes) -> bytes:
        """A getUpdates answer with each unreadable update replaced by its bare update_id.

        PTB then confirms the bad update with the next offset, as if it had been handled. Raises
        MalformedUpdates when the answer holds no update the bot can read or skip (an entry without
        an update_id cannot be confirmed), so that polling pauses instead of re-fetching at once.
        """
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = None
        if not (isinstance(answer, dict) and answer.get("ok") is True and isinstance(answer.get("result"), list)):
            self._skip(_digest(payload), "The Bot API's answer to getUpdates is not a list of updates")
            raise MalformedUpdates("getUpdates answered with something other than a list of updates")
        entries: list[Any] = answer["result"]
        kept = []
        for entry in entries:
            if self.read(entry) is not None:
                kept.append(entry)
            elif isinstance(entry, dict) and _is_int(entry.get("update_id")):
                kept.append({"update_id": entry["update_id"]})  # handled by no handler; confirmed
        if entries and not kept:
            raise MalformedUpdates("getUpdates answered only with entries that are not updates")
        return json.dumps({"ok": True, "result": kept}).encode()

    def _skip(self, key: object, message: str) -> None:
        if key in self._logged:
            self._logged.move_to_end(key)
            return
        self._logged[key] = None
        if len(self._logged) > REMEMBERED_SKIPS:
            self._logged.popitem(last=False)
        logger.warning(message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _digest(entry: object) -> str:
    """Identifies an entry without an update_id, so that re-fetching it is not logged again."""
    data = entry if isinstance(entry, bytes) else json.dumps(entry, sort_keys=True, default=repr).encode()
    return hashlib.sha256(data).hexdigest()


def _fields_read(update: Update) -> Iterator[tuple[str, object, type | tuple[type, ...]]]:
    """(name, value, expected type) of each field the bot or PTB's filters read from `update`.

    PTB's parser does not check types, so `"text": 5` or a string chat id would only fail later,
    inside a handler.
    """
    optional_str = (str, type(None))
    user = update.effective_user
    if user is not None:
        yield "from.id", user.id, int
    query = update.callback_query
    if query is not None:
        yield "callback_query.id", query.id, str
        yield "callback_query.data", query.data, optional_str
    message = update.effective_message
    replied = message.reply_to_message if isinstance(message, Message) else None
    for name, part in (("message", message), ("message.reply_to_message", replied)):
        if part is None:
            continue
        yield f"{name}.message_id", part.message_id, int
        yield f"{name}.chat.id", part.chat.id, int
        yield f"{name}.chat.type", part.chat.type, str
        if not isinstance(part, Message):
            continue
        yield f"{name}.text", part.text, optional_str
        yield f"{name}.caption", part.caption, optional_str
        if part.from_user is not None:
            yield f"{name}.from.id", part.from_user.id, int
        for entity in (*part.entities, *part.caption_entities):
            yield f"{name}.entities.type", entity.type, str
            yield f"{name}.entities.offset", entity.offset, int
            yield f"{name}.entities.length", entity.length, int
