"""Writing to the Milvus collections: the writer's lock, then the passages, term counts and sources.

Milvus has no transactions, so a write keeps the source table covering every passage at each step:

1. every source the write touches (`update.replaced`: new, changed, removed or expired articles) is
   first written to the sources collection marked `"incomplete": true`, without its file hash;
2. the replaced passages are deleted and the new ones inserted, then the term counts updated;
3. the sources are written last, as the update has them (the mark gone, the passage counts those
   stored), and the removed ones deleted.

A write cut short anywhere (a crash, `kill -9`) leaves each passage under a listed source: a source
marked incomplete is listed by `qabot sources`, removed with all its passages by `qabot remove`, and
indexed again in full by the next `qabot index` (no file hash, so it is never "unchanged").

Collections written before the mark existed may hold passages whose source is not listed at all:
`unlisted` finds them (only when the table's passage counts do not add up to the collection's), and
`MilvusStore.sources` lists them as incomplete, so they are seen and removable too; the next write
stores them in the table. It also gives the incomplete sources the number of passages they hold.
Term counts (re-ranking statistics) may be slightly off after a write cut short; `qabot index
--rebuild` makes them exact again.
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

from retrieval.errors import ConfigError
from retrieval.stores.milvus.connection import MilvusConnection
from retrieval.stores.milvus.schema import DUMMY, Collections
from retrieval.stores.milvus.vectors import MAX_VARCHAR, pack_vectors
from retrieval.stores.protocol import PassageRecord, StoreUpdate
from retrieval.stores.terms import passage_search_text
from retrieval.stores.writer_lock import take_writer_lock

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


def incomplete(entry: dict[str, Any]) -> dict[str, Any]:
    """A source table entry marked as not completely written: listed, removable, and never "unchanged"."""
    return {**{key: value for key, value in entry.items() if key != "file_hash"}, "incomplete": True}


class MilvusWriter:
    """Applies a `StoreUpdate` to existing collections; `read_sources` reads the stored source table
    (its rows only: not the unlisted sources that `MilvusStore.sources` adds)."""

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
        lock_path = Path(f"{Path(self.connection.uri).expanduser()}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = take_writer_lock(lock_path, self.collections.location)
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
        self._mark_incomplete(update)
        for batch in _batches(removed, _BATCH):
            ids = [row["id"] for row in batch]
            call(lambda client, ids=ids: client.delete(passages, ids=ids), "deleting passages")
        stored = self._insert(update, kept_ids, progress)
        self._update_terms(term_delta)
        sources = dict(update.sources)
        for source in update.replaced & set(sources):
            sources[source] = {**sources[source], "passages": stored[source]}
        self._update_sources(sources)
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

    def _mark_incomplete(self, update: StoreUpdate) -> None:
        """Before any passage changes, list every source the write touches as incomplete (step 1 above)."""
        if not update.replaced:
            return
        old = self.read_sources()
        rows = [
            {"id": source, "entry": incomplete(update.sources.get(source) or old.get(source) or {}), DUMMY: [0.0, 0.0]}
            for source in sorted(update.replaced)
        ]
        for batch in _batches(rows, 1000):
            self.connection.call(
                lambda client, batch=batch: client.upsert(self.collections.sources, batch), "writing sources"
            )

    def unlisted(self, table: dict[str, dict[str, Any]], count: int) -> dict[str, dict[str, Any]]:
        """The sources of passages that `table` (the stored source table) lacks, as incomplete entries,
        and the incomplete entries of `table` with the passages they hold; the passages are read only
        when the table's counts do not add up to `count`, the collection's."""
        if count == sum(int(entry.get("passages", 0) or 0) for entry in table.values()):
            return {}
        rows = self.connection.query_all(self.collections.passages, "", ["source", "title"])
        held = Counter(str(row["source"]) for row in rows)
        titles = {str(row["source"]): str(row.get("title") or "") for row in rows}
        found = {source: incomplete({"title": titles[source]}) for source in set(held) - set(table)}
        found |= {source: entry for source, entry in table.items() if entry.get("incomplete")}
        return {source: {**entry, "passages": held[source]} for source, entry in found.items()}

    def _insert(self, update: StoreUpdate, kept: set[str], progress: Callable[[str, int, int], None]) -> Counter[str]:
        """New passages are inserted; those whose id is already stored (`kept`) are upserted.
        Returns how many passages each source has stored."""
        call, passages = self.connection.call, self.collections.passages
        starts = np.cumsum([0, *[len(p.sentence_spans) for p in update.passages]])
        rows, stored = [], Counter[str]()
        for i, passage in enumerate(update.passages):
            if len(passage.content.encode("utf-8")) > MAX_VARCHAR:
                logger.warning("A passage of %s is longer than Milvus allows (64 KB) and was left out", passage.source)
                continue
            stored[passage.source] += 1
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
        return stored

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
