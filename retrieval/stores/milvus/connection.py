"""The connection to Milvus: one client, made on first use and again after a failed call, whose
failures reach the user as one line naming `store.uri` (never the token)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retrieval.errors import ConfigError, QabotError, ServiceUnavailableError


def _quiet_pymilvus() -> None:
    """pymilvus prints warnings and retries to stderr through its own handlers, set up when it is
    imported, and gRPC's C core logs connection events there; failures reach the user as one line
    from here instead."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # read when gRPC is first imported
    import pymilvus  # noqa: F401 - its import configures the loggers silenced here

    for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


class StoreUnavailableError(ServiceUnavailableError):
    """Milvus cannot be reached or refused the request; the message names `store.uri`, never the token."""


class MilvusConnection:
    """The client to Milvus at `uri` (a Milvus Lite folder on this machine, or a server's address)."""

    def __init__(self, uri: str, timeout: float, token: str = "") -> None:
        self.uri = uri
        self.timeout = timeout
        self.is_local = "://" not in uri
        self.lock = threading.RLock()
        # Whether the collections were loaded for search through this client: a failed call drops the
        # client, and a Milvus that restarted meanwhile has released them.
        self.loaded = False
        self._token = token
        self._client: Any = None

    def describe(self, exc: BaseException) -> str:
        """`exc` in one line, the token redacted."""
        text = str(getattr(exc, "message", "") or exc).splitlines()[0] if str(exc) else type(exc).__name__
        if self._token:
            text = text.replace(self._token, "[REDACTED]")
        return text

    def _connect(self) -> Any:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise QabotError(
                "store.backend = milvus needs pymilvus and milvus-lite: run `make setup`, "
                "or pip install -e '.[milvus]'",
                exit_code=2,
            ) from None

        _quiet_pymilvus()
        if self.is_local:
            self._check_lite_path(Path(self.uri).expanduser())
        # A connection of its own: pymilvus shares one per address by default, and close() keeps it, so a
        # client made again after Milvus was lost would reuse a channel still waiting out gRPC's backoff.
        kwargs: dict[str, Any] = {"uri": self.uri, "timeout": self.timeout, "dedicated": True}
        if self._token:
            kwargs["token"] = self._token
        return MilvusClient(**kwargs)

    def _check_lite_path(self, path: Path) -> None:
        """Milvus Lite keeps its data in a folder at its `.db` path: anything else there is not a Milvus
        Lite database (Milvus Lite would only say it failed to open it), and its folder must be one."""
        existing = next((p for p in (path, *path.parents) if os.path.lexists(p)), None)
        if existing is not None and not existing.is_dir():
            what = "a file" if existing.is_file() else "not a folder"
            where = "" if existing == path else f", inside {existing}, which is {what}"
            raise ConfigError(
                f"store.uri = {self.uri} is not a Milvus Lite database{where or f' ({what})'}: Milvus Lite keeps "
                "a folder at that path; set store.uri (QABOT_STORE_URI) to another path ending in .db",
                exit_code=2,
            )
        path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def client(self) -> Any:
        with self.lock:
            if self._client is None:
                try:
                    self._client = self._connect()
                except QabotError:
                    raise
                except Exception as exc:  # noqa: BLE001 - pymilvus raises several kinds
                    if self.is_local:  # Milvus Lite opens its folder in one process only
                        raise StoreUnavailableError(
                            f"cannot open Milvus Lite at store.uri = {self.uri} ({self.describe(exc)}): another "
                            "process may have it open; to share it, run `milvus-lite server --data-dir PATH` and "
                            "set store.uri to its http:// address"
                        ) from None
                    raise StoreUnavailableError(
                        f"cannot reach Milvus at store.uri = {self.uri} ({self.describe(exc)}): start it, "
                        "or set store.uri (QABOT_STORE_URI) to a Milvus Lite path ending in .db or a running server"
                    ) from None
            return self._client

    def call(self, request: Callable[[Any], Any], doing: str) -> Any:
        """`request(client)`; a lost connection is dropped so that the next call reconnects."""
        try:
            return request(self.client)
        except QabotError:
            raise
        except Exception as exc:  # noqa: BLE001
            with self.lock:
                if self._client is not None:
                    with contextlib.suppress(Exception):
                        self._client.close()
                self._client = None
                self.loaded = False  # a Milvus that restarted meanwhile has released the collections
            raise StoreUnavailableError(
                f"Milvus at store.uri = {self.uri} failed while {doing}: {self.describe(exc)}"
            ) from None

    def query_all(self, collection: str, where: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row of `collection` matching `where`, read in batches."""

        def read(client: Any) -> list[dict[str, Any]]:
            iterator = client.query_iterator(collection, batch_size=1000, filter=where, output_fields=fields)
            rows: list[dict[str, Any]] = []
            try:
                while batch := iterator.next():
                    rows.extend(batch)
            finally:
                iterator.close()
            return rows

        return self.call(read, f"reading {collection}")  # type: ignore[no-any-return]
