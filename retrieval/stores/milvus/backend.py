"""The Milvus backend: passages in a Milvus collection, searched by Milvus's BM25 and dense search, fused in Milvus.

`store.uri` is a Milvus Lite folder on this machine, or `http(s)://host:19530` for a Milvus server
or cluster. Three collections, named after `store.collection`:

    <collection>          one row a passage: id, content, the BM25 text (title and content, analysed
                          inside Milvus into the `sparse` field), the passage vector, title, source,
                          date and address, sentence spans and the sentences' vectors (packed)
    <collection>_sources  one row an article: the source table the writer keeps (file hash, title...)
    <collection>_terms    one row a stemmed term: how many passages hold it, for re-ranking by rare
                          terms exactly as the embedded backend does

The collections' description records the embedding model and dimension, checked on every start.
Milvus has no transactions: a write deletes the replaced passages, inserts the new ones and
updates the sources last, so a write cut short is completed by running it again.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, component

from retrieval.errors import ConfigError, IndexMissingError, QabotError, ServiceUnavailableError
from retrieval.settings import Settings
from retrieval.stores.protocol import PassageRecord, StoreUpdate, passage_document
from retrieval.stores.terms import STOPWORDS, passage_search_text, stemmer

logger = logging.getLogger(__name__)


def _quiet_pymilvus() -> None:
    """pymilvus prints warnings and retries to stderr through its own handlers, set up when it is
    imported, and gRPC's C core logs connection events there; failures reach the user as one line
    from here instead."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # read when gRPC is first imported
    import pymilvus  # noqa: F401 - its import configures the loggers silenced here

    for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


FORMAT = 1
_TOKEN_ENV = "MILVUS_TOKEN"
_MAX_VARCHAR = 65_535
_BATCH = 256
_RRF_K = 60
# Milvus's RRF scores 1/(60 + rank from 1); Haystack's joiner (the embedded backend) scales the same
# sum by 61/2, so that a passage first in both lists scores 1.0. The re-ranker uses that scale.
_RRF_SCALE = 61 / 2
_REBUILD = "rebuild it with `qabot index --rebuild PATH...`"
_OUTPUT = ["id", "content", "title", "source", "published", "url", "spans", "vectors"]
_HEADER = "qabot.header"  # a collection property: format, embedding model and dimension
_DUMMY = "dummy"  # the small tables have a 2-d zero vector: Milvus collections need a vector field


class StoreUnavailableError(ServiceUnavailableError):
    """Milvus cannot be reached or refused the request; the message names `store.uri`, never the token."""


def pack_vectors(vectors: np.ndarray) -> str:
    """Sentence vectors as one string: float32 when it fits a Milvus VARCHAR, else float16, else cut.

    Passages of the default size (120 words) have a few sentences: float32, exactly as stored in
    the embedded backend. Only a passage of more than ~32 sentences (384-d) is stored in float16,
    and past ~64 its last sentences have no vector (they then score by their terms alone).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    for kind, dtype in (("f", np.float32), ("h", np.float16)):
        packed = kind + ":" + base64.b64encode(vectors.astype(dtype).tobytes()).decode("ascii")
        if len(packed) <= _MAX_VARCHAR:
            return packed
    per_row = vectors.shape[1] * 2 * 4 / 3
    keep = int((_MAX_VARCHAR - 2) // per_row)
    return "h:" + base64.b64encode(vectors[:keep].astype(np.float16).tobytes()).decode("ascii")


def unpack_vectors(packed: str, sentences: int, dimension: int) -> np.ndarray:
    kind, _, data = packed.partition(":")
    dtype = np.float32 if kind == "f" else np.float16
    vectors = np.frombuffer(base64.b64decode(data), dtype=dtype).reshape(-1, dimension).astype(np.float32)
    if vectors.shape[0] < sentences:
        vectors = np.vstack([vectors, np.zeros((sentences - vectors.shape[0], dimension), np.float32)])
    return vectors


def _search_text(passage: PassageRecord) -> str:
    """What BM25 reads in Milvus: title and content, cut to a VARCHAR's limit."""
    text = passage_search_text(passage)
    return text.encode("utf-8")[:_MAX_VARCHAR].decode("utf-8", "ignore")


class _Terms:
    """Stemmed, stop-word-free terms, exactly as the embedded backend's BM25 tokenizer (bm25s's
    defaults: lower case, words of two or more characters, stop words out, then the stemmer)."""

    _WORDS = re.compile(r"(?u)\b\w\w+\b")

    def __init__(self) -> None:
        self._stem = stemmer().stemWord
        self._stopwords = STOPWORDS
        self._stems: dict[str, str] = {}

    def __call__(self, texts: list[str]) -> list[set[str]]:
        stems = self._stems
        out = []
        for text in texts:
            terms = set()
            for word in self._WORDS.findall(text.lower()):
                if word in self._stopwords:
                    continue
                stem = stems.get(word)
                if stem is None:
                    stem = stems[word] = self._stem(word)
                    if len(stems) > 200_000:
                        stems.clear()
                terms.add(stem)
            out.append(terms)
        return out


class MilvusLexicon:
    """Term rarity from the `_terms` table: the same idf as the embedded backend's BM25 index."""

    def __init__(self, store: MilvusStore, passages: int) -> None:
        self.store = store
        self.passages = max(passages, 1)
        self._idf: dict[str, float] = {}

    def terms(self, texts: list[str]) -> list[set[str]]:
        return self.store.tokenize(texts)

    def _load(self, terms: set[str]) -> None:
        missing = [t for t in terms if t not in self._idf]
        if not missing:
            return
        found = self.store.call(
            lambda client: client.get(self.store.terms, ids=missing, output_fields=["df"]), "reading term counts"
        )
        n = self.passages
        counts = {row["id"]: int(row["df"]) for row in found}
        for term in missing:
            df = counts.get(term, 0)
            self._idf[term] = math.log(1.0 + (n - df + 0.5) / (df + 0.5)) if df > 0 else 0.0

    def idf(self, terms: set[str]) -> float:
        self._load(terms)
        return float(sum(self._idf.get(t, 0.0) for t in terms))


@component
class MilvusPassageRetriever:
    """BM25 (Milvus's BM25 function over the passage text) and dense search, fused by Milvus's RRF.

    Each list has `candidates` passages; the `top_k` fused best come back as the embedded backend's
    retrievers and joiner give them, sentence spans and vectors in meta.
    """

    def __init__(self, store: MilvusStore, candidates: int = 20, top_k: int = 10) -> None:
        self.store = store
        self.candidates = candidates
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, query: str, query_embedding: Any) -> dict[str, list[Document]]:
        from pymilvus import AnnSearchRequest, RRFRanker

        vector = [float(x) for x in np.asarray(query_embedding, dtype=np.float32)]
        requests = [
            AnnSearchRequest(data=[vector], anns_field="vector", param={"metric_type": "COSINE"}, limit=self.candidates)
        ]
        if any(self.store.tokenize([query])[0]):  # BM25 on a query without a known term finds nothing
            requests.append(
                AnnSearchRequest(
                    data=[query], anns_field="sparse", param={"metric_type": "BM25"}, limit=self.candidates
                )
            )
        self.store.ensure_loaded()
        hits = self.store.call(
            lambda client: client.hybrid_search(
                self.store.collection,
                requests,
                ranker=RRFRanker(_RRF_K),
                limit=self.top_k,
                output_fields=_OUTPUT,
            ),
            "searching",
        )
        return {"documents": [self.store.document(hit["entity"], hit["distance"] * _RRF_SCALE) for hit in hits[0]]}


class _Ports:
    def __init__(self, store: MilvusStore) -> None:
        self.query_inputs, self.embedding_inputs = ["milvus.query"], ["milvus.query_embedding"]
        self.output = "milvus.documents"
        self.lexicon = store.lexicon


class MilvusStore:
    """The passage store on Milvus (see the module's docstring for its layout)."""

    backend = "milvus"

    def __init__(self, settings: Settings, embedding_id: str, dimension: int, token: str = "") -> None:
        self.settings = settings.store
        self.uri = settings.store_uri
        self.collection = self.settings.collection
        self.sources_collection = f"{self.collection}_sources"
        self.terms = f"{self.collection}_terms"
        self.embedding_id = embedding_id
        self.dimension = dimension
        self.location = f"Milvus collection {self.collection} at {self.uri}"
        self._token = token
        self._client: Any = None
        self._lock = threading.RLock()
        self._tokenize = _Terms()
        self._lexicon: MilvusLexicon | None = None
        self._lexicon_at = 0.0
        self._checked = False
        self._loaded = False
        self._is_local = "://" not in self.uri

    # ----------------------------------------------------------------- connection
    def _describe(self, exc: BaseException) -> str:
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
        if self._is_local:
            Path(self.uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # A connection of its own: pymilvus shares one per address by default, and close() keeps it, so a
        # client made again after Milvus was lost would reuse a channel still waiting out gRPC's backoff.
        kwargs: dict[str, Any] = {"uri": self.uri, "timeout": self.settings.timeout, "dedicated": True}
        if self._token:
            kwargs["token"] = self._token
        return MilvusClient(**kwargs)

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._connect()
                except QabotError:
                    raise
                except Exception as exc:  # noqa: BLE001 - pymilvus raises several kinds
                    if self._is_local:  # Milvus Lite opens its folder in one process only
                        raise StoreUnavailableError(
                            f"cannot open Milvus Lite at store.uri = {self.uri} ({self._describe(exc)}): another "
                            "process may have it open; to share it, run `milvus-lite server --data-dir PATH` and "
                            "set store.uri to its http:// address"
                        ) from None
                    raise StoreUnavailableError(
                        f"cannot reach Milvus at store.uri = {self.uri} ({self._describe(exc)}): start it, "
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
            with self._lock:
                if self._client is not None:
                    with contextlib.suppress(Exception):
                        self._client.close()
                self._client = None
                self._loaded = False  # a Milvus that restarted meanwhile has released the collections
            raise StoreUnavailableError(
                f"Milvus at store.uri = {self.uri} failed while {doing}: {self._describe(exc)}"
            ) from None

    def tokenize(self, texts: list[str]) -> list[set[str]]:
        return self._tokenize(texts)

    # ----------------------------------------------------------------- reading
    def _header(self) -> dict[str, Any] | None:
        """The description recorded with the passage collection; None when it does not exist."""

        def describe(client: Any) -> dict[str, Any] | None:
            if not client.has_collection(self.collection):
                return None
            return client.describe_collection(self.collection)

        info = self.call(describe, "opening the collection")
        if info is None:
            return None
        self.ensure_loaded()
        try:
            header = json.loads((info.get("properties") or {}).get(_HEADER) or "{}")
        except ValueError:
            header = {}
        return header if isinstance(header, dict) else {}

    def ensure_loaded(self) -> None:
        """Load the collections for search: once, and again after a failed call."""
        if not self._loaded:
            self.call(self._load, "loading the collections")
            self._loaded = True

    def exists(self) -> bool:
        return self._header() is not None

    def check(self) -> None:
        header = self._header()
        if header is None:
            raise IndexMissingError(f"no index in {self.location}: build it with `qabot index PATH...`", exit_code=2)
        if header.get("qabot_format") != FORMAT:
            raise IndexMissingError(
                f"{self.location} was not written by this qabot (no qabot header): {_REBUILD}", exit_code=2
            )
        if header.get("embedding_model") != self.embedding_id or header.get("dimension") != self.dimension:
            raise IndexMissingError(
                f"{self.location} was built with embedding model {header.get('embedding_model')!r} "
                f"(dimension {header.get('dimension')}), not the configured {self.embedding_id!r} "
                f"(dimension {self.dimension}): {_REBUILD}",
                exit_code=2,
            )
        self._checked = True

    def _load(self, client: Any) -> None:
        """Load the collections for search (Milvus Lite releases them when the process ends)."""
        for name in self._names():
            if not client.has_collection(name):
                raise IndexMissingError(f"{self.location} lacks its collection {name}: {_REBUILD}", exit_code=2)
            client.load_collection(name)

    def count(self) -> int:
        if not self.exists():
            return 0
        rows = self.call(
            lambda client: client.query(self.collection, filter="", output_fields=["count(*)"]), "counting passages"
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def sources(self) -> dict[str, dict[str, Any]]:
        if not self.exists():
            return {}
        rows = self._query_all(self.sources_collection, "", ["id", "entry"])
        return {row["id"]: dict(row["entry"]) for row in rows}

    def titles(self, n: int) -> list[str]:
        rows = self.call(
            lambda client: client.query(self.sources_collection, filter="", output_fields=["entry"], limit=n),
            "reading titles",
        )
        return [row["entry"].get("title", "") for row in rows if row["entry"].get("title")][:n]

    def _query_all(self, collection: str, where: str, fields: list[str]) -> list[dict[str, Any]]:
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

    def document(self, entity: dict[str, Any], score: float) -> Document:
        spans = list(entity.get("spans") or [])
        record = PassageRecord(
            id=entity["id"],
            content=entity["content"],
            title=entity.get("title", ""),
            source=entity.get("source", ""),
            sentence_spans=spans,
            published=entity.get("published", ""),
            url=entity.get("url", ""),
        )
        return passage_document(record, unpack_vectors(entity["vectors"], len(spans), self.dimension), score)

    # ----------------------------------------------------------------- retrieval
    def add_retrieval(self, pipeline: Any, candidates: int, top_k: int) -> _Ports:
        if not self._checked:
            self.check()
        pipeline.add_component("milvus", MilvusPassageRetriever(self, candidates=candidates, top_k=2 * top_k))
        return _Ports(self)

    def lexicon(self) -> MilvusLexicon:
        """Term rarity, refreshed every 30 s (other writers may have added passages meanwhile)."""
        with self._lock:
            if self._lexicon is None or time.monotonic() - self._lexicon_at > 30:
                self._lexicon = MilvusLexicon(self, self.count())
                self._lexicon_at = time.monotonic()
            return self._lexicon

    # ----------------------------------------------------------------- writing
    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """On Milvus Lite, the folder's lock; on a server, one writer at a time is up to the operator."""
        if self._is_local and self.settings.analyzer == "english":
            raise ConfigError(
                'store.analyzer = "english" needs a Milvus server: Milvus Lite has only "standard"; '
                "set store.analyzer to standard, or store.uri to a server",
                exit_code=2,
            )
        if not self._is_local:
            yield
            return
        from filelock import FileLock, Timeout

        lock_path = Path(f"{Path(self.uri).expanduser()}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise QabotError(
                f"another qabot is indexing into {self.location}: wait for it to finish, then try again", exit_code=3
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def _create(self, client: Any) -> None:
        from pymilvus import DataType, Function, FunctionType

        header = json.dumps({"qabot_format": FORMAT, "embedding_model": self.embedding_id, "dimension": self.dimension})
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description=header)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("content", DataType.VARCHAR, max_length=_MAX_VARCHAR)
        analyzer: dict[str, Any] = {
            "tokenizer": "standard",
            "filter": [{"type": "stop", "stop_words": sorted(STOPWORDS)}],
        }
        if self.settings.analyzer == "english":
            analyzer = {"type": "english"}
        schema.add_field(
            "text", DataType.VARCHAR, max_length=_MAX_VARCHAR, enable_analyzer=True, analyzer_params=analyzer
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        for name in ("title", "source", "url"):
            schema.add_field(name, DataType.VARCHAR, max_length=4096)
        schema.add_field("published", DataType.VARCHAR, max_length=32)
        schema.add_field("spans", DataType.JSON)
        schema.add_field("vectors", DataType.VARCHAR, max_length=_MAX_VARCHAR)
        schema.add_function(
            Function(
                name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]
            )
        )
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
        index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(self.collection, schema=schema, index_params=index, description=header)
        for name, value in ((self.sources_collection, DataType.JSON), (self.terms, DataType.INT64)):
            table = client.create_schema(auto_id=False, enable_dynamic_field=False, description=header)
            table.add_field("id", DataType.VARCHAR, is_primary=True, max_length=4096)
            table.add_field("entry" if value == DataType.JSON else "df", value)
            table.add_field(_DUMMY, DataType.FLOAT_VECTOR, dim=2)
            table_index = client.prepare_index_params()
            table_index.add_index(field_name=_DUMMY, index_type="AUTOINDEX", metric_type="L2")
            client.create_collection(name, schema=table, index_params=table_index, description=header)
        client.alter_collection_properties(self.collection, properties={_HEADER: header})
        self._loaded = False

    def _drop(self, client: Any) -> None:
        self._loaded = self._checked = False
        for name in self._names():
            if client.has_collection(name):
                client.drop_collection(name)

    def write(self, update: StoreUpdate, progress: Callable[[str, int, int], None]) -> None:
        if update.rebuild:
            self.call(self._drop, "dropping the old collections")
        if not self.exists():
            self.call(self._create, "creating the collections")
        self.check()
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
        for start in range(0, len(removed), _BATCH):
            ids = [row["id"] for row in removed[start : start + _BATCH]]
            self.call(lambda client, ids=ids: client.delete(self.collection, ids=ids), "deleting passages")
        self._insert(update, kept_ids, progress)
        self._update_terms(term_delta)
        self._update_sources(update.sources)
        # Seal what was written: Milvus Lite searches unsealed rows one by one (3.6 s against 40 ms
        # a question at 2,000 passages); a server flushes on its own schedule, and this is cheap.
        self.call(lambda client: [client.flush(name) for name in self._names()], "flushing")
        with self._lock:
            self._lexicon = None

    def _names(self) -> tuple[str, str, str]:
        return (self.collection, self.sources_collection, self.terms)

    def _passages_of(self, sources: set[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        names = sorted(sources)
        for start in range(0, len(names), 100):
            # Milvus's expressions take UTF-8 text but no \uXXXX escapes (Milvus Lite rejects them).
            where = f"source in {json.dumps(names[start : start + 100], ensure_ascii=False)}"
            rows += self._query_all(self.collection, where, ["id", "text"])
        return rows

    def _insert(self, update: StoreUpdate, kept: set[str], progress: Callable[[str, int, int], None]) -> None:
        """New passages are inserted; those whose id is already stored (`kept`) are upserted."""
        starts = np.cumsum([0, *[len(p.sentence_spans) for p in update.passages]])
        rows = []
        for i, passage in enumerate(update.passages):
            if len(passage.content.encode("utf-8")) > _MAX_VARCHAR:
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
                self.call(lambda client, new=new: client.insert(self.collection, new), "writing passages")
            if old:
                self.call(lambda client, old=old: client.upsert(self.collection, old), "writing passages")
            progress("writing to Milvus", min(start + _BATCH, len(rows)), len(rows))

    def _update_terms(self, delta: Counter[str]) -> None:
        changed = [term for term, count in delta.items() if count]
        for start in range(0, len(changed), 1000):
            terms = changed[start : start + 1000]
            found = self.call(
                lambda client, terms=terms: client.get(self.terms, ids=terms, output_fields=["df"]), "reading terms"
            )
            counts = {row["id"]: int(row["df"]) for row in found}
            rows, gone = [], []
            for term in terms:
                df = counts.get(term, 0) + delta[term]
                if df > 0:
                    rows.append({"id": term, "df": df, _DUMMY: [0.0, 0.0]})
                elif term in counts:
                    gone.append(term)
            if rows:
                self.call(lambda client, rows=rows: client.upsert(self.terms, rows), "writing terms")
            if gone:
                self.call(lambda client, gone=gone: client.delete(self.terms, ids=gone), "writing terms")

    def _update_sources(self, sources: dict[str, dict[str, Any]]) -> None:
        old = self.sources()
        rows = [
            {"id": source, "entry": entry, _DUMMY: [0.0, 0.0]}
            for source, entry in sources.items()
            if old.get(source) != entry
        ]
        for start in range(0, len(rows), 1000):
            batch = rows[start : start + 1000]
            self.call(lambda client, batch=batch: client.upsert(self.sources_collection, batch), "writing sources")
        gone = sorted(set(old) - set(sources))
        for start in range(0, len(gone), 1000):
            ids = gone[start : start + 1000]
            self.call(lambda client, ids=ids: client.delete(self.sources_collection, ids=ids), "writing sources")
