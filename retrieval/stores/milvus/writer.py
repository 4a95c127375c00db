"""Writing to the Milvus collections: the writer's lock, then the passages, term counts and sources.

Milvus has no transactions: a write deletes the replaced passages, inserts the new ones and
updates the sources last, so a write cut short is completed by running it again.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from retrieval.errors import ConfigError, QabotError
from retrieval.stores.milvus.connection import MilvusConnection
from retrieval.stores.milvus.schema import DUMMY, Collections
from retrieval.stores.milvus.vectors import MAX_VARCHAR, pack_vectors
from retrieval.stores.protocol import PassageRecord, StoreUpdate
from retrieval.stores.terms import passage_search_text

logger = logging.getLogger(__name__)

_BATCH = 256
_T = TypeVar("_T")


def _search_text(passage: PassageRecord) -> str:
    """What BM25 reads in Milvus: title and content, cut to a VARCHAR's limit."""
    text = passage_search_text(passage)
    return text.encode("utf-8")[:MAX_VARCHAR].decode("utf-8", "ignore")


def _batches(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MilvusWriter:
    """Applies a `StoreUpdate` to existing collections; `read_sources` reads the stored source table."""

    def __init__(
        self,
        connection: MilvusConnection,
        collections: Collections,
        tokenize: Callable[[list[str]], list[set[str]]],
        read_sources: Callable[[], dict[str, dict[str, Any]]],
    ) -> None:
        self.connection = connection
        self.collections = collections
        self.tokenize = tokenize
        self.read_sources = read_sources

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """On Milvus Lite, the folder's lock; on a server, one writer at a time is up to the operator."""
        if self.connection.is_local and self.collections.analyzer == "english":
            raise ConfigError(
                'store.analyzer = "english" needs a Milvus server: Milvus Lite has only "standard"; '
                "set store.analyzer to standard, or store.uri to a server",
                exit_code=2,
            )
        if not self.connection.is_local:
            yield
            return
        from filelock import FileLock, Timeout

        lock_path = Path(f"{Path(self.connection.uri).expanduser()}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise QabotError(
                f"another qabot is indexing into {self.collections.location}: wait for it to finish, then try again",
                exit_code=3,
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def write(self, update: StoreUpdate, progress: Callable[[str, int, int], None]) -> None:
        """Replace the passages of `update.replaced`, add the new ones, then the term counts and sources."""
        call, passages = self.connection.call, self.collections.passages
        new_ids = {p.id for p in update.passages}
        gone = self._passages_of(update.replaced)
        removed = [row for row in gone if row["id"] not in new_ids]
        term_delta: Counter[str] = Counter()
        for terms in self.tokenize([row["text"] for row in removed]):
            term_delta.subtract(terms)
        kept_ids = {row["id"] for row in gone} & new_ids
        fresh = [p for p in update.passages if p.id not in kept_ids]
        for terms in self.tokenize([_search_text(p) for p in fresh]):
            term_delta.update(terms)
        for batch in _batches(removed, _BATCH):
            ids = [row["id"] for row in batch]
            call(lambda client, ids=ids: client.delete(passages, ids=ids), "deleting passages")
        self._insert(update, kept_ids, progress)
        self._update_terms(term_delta)
        self._update_sources(update.sources)
        # Seal what was written: Milvus Lite searches unsealed rows one by one (3.6 s against 40 ms
        # a question at 2,000 passages); a server flushes on its own schedule, and this is cheap.
        call(lambda client: [client.flush(name) for name in self.collections.names], "flushing")

    def _passages_of(self, sources: set[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for names in _batches(sorted(sources), 100):
            # Milvus's expressions take UTF-8 text but no \uXXXX escapes (Milvus Lite rejects them).
            where = f"source in {json.dumps(names, ensure_ascii=False)}"
            rows += self.connection.query_all(self.collections.passages, where, ["id", "text"])
        return rows

    def _insert(self, update: StoreUpdate, kept: set[str], progress: Callable[[str, int, int], None]) -> None:
        """New passages are inserted; those whose id is already stored (`kept`) are upserted."""
        call, passages = self.connection.call, self.collections.passages
        starts = np.cumsum([0, *[len(p.sentence_spans) for p in update.passages]])
        rows = []
        for i, passage in enumerate(update.passages):
            if len(passage.content.encode("utf-8")) > MAX_VARCHAR:
                logger.warning("A passage of %s is longer than Milvus allows (64 KB) and was left out", passage.source)
                continue
            rows.append(
                {
                    "id": passage.id,
                    "content": passage.content,
                    "text": _search_text(passage),
                    "vector": [float(x) for x in update.passage_vectors[i]],
                    "title": passage.title[:1000],
                    "source": passage.source[:1000],
                    "url": passage.url[:1000],
                    "published": passage.published[:32],
                    "spans": passage.sentence_spans,
                    "vectors": pack_vectors(update.sentence_vectors[starts[i] : starts[i + 1]]),
                }
            )
        progress("writing to Milvus", 0, len(rows))
        for start in range(0, len(rows), _BATCH):
            batch = rows[start : start + _BATCH]
            new = [row for row in batch if row["id"] not in kept]
            old = [row for row in batch if row["id"] in kept]
            if new:
                call(lambda client, new=new: client.insert(passages, new), "writing passages")
            if old:
                call(lambda client, old=old: client.upsert(passages, old), "writing passages")
            progress("writing to Milvus", min(start + _BATCH, len(rows)), len(rows))

    def _update_terms(self, delta: Counter[str]) -> None:
        call, table = self.connection.call, self.collections.terms
        changed = [term for term, count in delta.items() if count]
        for terms in _batches(changed, 1000):
            found = call(
                lambda client, terms=terms: client.get(table, ids=terms, output_fields=["df"]), "reading terms"
            )
            counts = {row["id"]: int(row["df"]) for row in found}
            rows, gone = [], []
            for term in terms:
                df = counts.get(term, 0) + delta[term]
                if df > 0:
                    rows.append({"id": term, "df": df, DUMMY: [0.0, 0.0]})
                elif term in counts:
                    gone.append(term)
            if rows:
                call(lambda client, rows=rows: client.upsert(table, rows), "writing terms")
            if gone:
                call(lambda client, gone=gone: client.delete(table, ids=gone), "writing terms")

    def _update_sources(self, sources: dict[str, dict[str, Any]]) -> None:
        call, table = self.connection.call, self.collections.sources
        old = self.read_sources()
        rows = [
            {"id": source, "entry": entry, DUMMY: [0.0, 0.0]}
            for source, entry in sources.items()
            if old.get(source) != entry
        ]
        for batch in _batches(rows, 1000):
            call(lambda client, batch=batch: client.upsert(table, batch), "writing sources")
        for ids in _batches(sorted(set(old) - set(sources)), 1000):
            call(lambda client, ids=ids: client.delete(table, ids=ids), "writing sources")
