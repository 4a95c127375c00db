"""The Milvus backend: passages in a Milvus collection, searched by Milvus's BM25 and dense search, fused in Milvus.

`store.uri` is a Milvus Lite folder on this machine, or `http(s)://host:19530` for a Milvus server
or cluster. The collections' layout is in `schema.py`, the write path in `writer.py`, searching in
`search.py`; `MilvusStore` puts them together behind the `PassageStore` protocol.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from haystack import Document

from retrieval.settings import Settings
from retrieval.stores.milvus.connection import MilvusConnection
from retrieval.stores.milvus.schema import Collections, read_header
from retrieval.stores.milvus.search import (
    PASSAGE_FIELDS,
    MilvusLexicon,
    MilvusPassageRetriever,
    Ports,
    Terms,
    hit_document,
)
from retrieval.stores.milvus.writer import MilvusWriter
from retrieval.stores.protocol import StoreUpdate


class MilvusStore:
    """The passage store on Milvus (see `schema.py` for its layout)."""

    backend = "milvus"

    def __init__(self, settings: Settings, embedding_id: str, dimension: int, token: str = "") -> None:
        self.settings = settings.store
        self.uri = settings.store_uri
        self.collection = self.settings.collection
        self.embedding_id = embedding_id
        self.dimension = dimension
        self.location = f"Milvus collection {self.collection} at {self.uri}"
        self._collections = Collections(self.collection, embedding_id, dimension, self.settings.analyzer, self.location)
        self.sources_collection = self._collections.sources
        self.terms = self._collections.terms
        self._connection = MilvusConnection(self.uri, self.settings.timeout, token)
        self._lock = self._connection.lock
        self._tokenize = Terms()
        self._writer = MilvusWriter(self._connection, self._collections, self._tokenize, self._source_table)
        self._lexicon: MilvusLexicon | None = None
        self._lexicon_at = 0.0
        self._checked = False

    # ----------------------------------------------------------------- connection
    @property
    def client(self) -> Any:
        return self._connection.client

    def call(self, request: Callable[[Any], Any], doing: str) -> Any:
        """`request(client)`; a lost connection is dropped so that the next call reconnects."""
        return self._connection.call(request, doing)

    def tokenize(self, texts: list[str]) -> list[set[str]]:
        return self._tokenize(texts)

    # ----------------------------------------------------------------- reading
    def _header(self) -> dict[str, Any] | None:
        """The description recorded with the passage collection; None when it does not exist."""
        info = self.call(self._collections.describe, "opening the collection")
        if info is None:
            return None
        self.ensure_loaded()
        return read_header(info)

    def ensure_loaded(self) -> None:
        """Load the collections for search: once, and again after a failed call."""
        if not self._connection.loaded:
            self.call(self._collections.load, "loading the collections")
            self._connection.loaded = True

    def exists(self) -> bool:
        return self._header() is not None

    def check(self) -> None:
        self._collections.check(self._header())
        self._checked = True

    def count(self) -> int:
        if not self.exists():
            return 0
        rows = self.call(
            lambda client: client.query(self.collection, filter="", output_fields=["count(*)"]), "counting passages"
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def sources(self) -> dict[str, dict[str, Any]]:
        """The source table, and as incomplete entries the sources of any passages it lacks (see `writer.py`)."""
        if not self.exists():
            return {}
        table = self._source_table()
        return {**table, **self._writer.unlisted(table, self.count())}

    def _source_table(self) -> dict[str, dict[str, Any]]:
        """The rows of the sources collection."""
        if not self.exists():
            return {}
        rows = self._connection.query_all(self.sources_collection, "", ["id", "entry"])
        return {row["id"]: dict(row["entry"]) for row in rows}

    def titles(self, n: int) -> list[str]:
        rows = self.call(
            lambda client: client.query(self.sources_collection, filter="", output_fields=["entry"], limit=n),
            "reading titles",
        )
        return [row["entry"].get("title", "") for row in rows if row["entry"].get("title")][:n]

    def passages_of(self, source: str) -> list[Document]:
        if not self.exists():
            return []
        self.ensure_loaded()
        rows = self._connection.query_all(self.collection, f"source == {json.dumps(source)}", list(PASSAGE_FIELDS))
        return [self.document(row, 0.0) for row in sorted(rows, key=lambda row: str(row["id"]))]

    def document(self, entity: dict[str, Any], score: float) -> Document:
        return hit_document(entity, score, self.dimension)

    # ----------------------------------------------------------------- retrieval
    def add_retrieval(self, pipeline: Any, candidates: int, top_k: int) -> Ports:
        if not self._checked:
            self.check()
        pipeline.add_component("milvus", MilvusPassageRetriever(self, candidates=candidates, top_k=2 * top_k))
        return Ports(self.lexicon)

    def lexicon(self) -> MilvusLexicon:
        """Term rarity, refreshed every 30 s (other writers may have added passages meanwhile)."""
        with self._lock:
            if self._lexicon is None or time.monotonic() - self._lexicon_at > 30:
                self._lexicon = MilvusLexicon(self, self.count())
                self._lexicon_at = time.monotonic()
            return self._lexicon

    # ----------------------------------------------------------------- writing
    def writer_lock(self) -> AbstractContextManager[None]:
        """On Milvus Lite, the folder's lock; on a server, one writer at a time is up to the operator."""
        return self._writer.lock()

    def _create(self, client: Any) -> None:
        self._collections.create(client)
        self._connection.loaded = False

    def _drop(self, client: Any) -> None:
        self._connection.loaded = self._checked = False
        self._collections.drop(client)

    def write(self, update: StoreUpdate, progress: Callable[[str, int, int], None]) -> None:
        if update.rebuild:
            self.call(self._drop, "dropping the old collections")
        if not self.exists():
            self.call(self._create, "creating the collections")
        self.check()
        self._writer.write(update, progress)
        with self._lock:
            self._lexicon = None
