"""The store's three Milvus collections: their layout, creating, loading and dropping them, and the
header that says which embedding model wrote them.

Three collections, named after `store.collection`:

    <collection>          one row a passage: id, content, the BM25 text (title and content, analysed
                          inside Milvus into the `sparse` field), the passage vector, title, source,
                          date and address, sentence spans and the sentences' vectors (packed)
    <collection>_sources  one row an article: the source table the writer keeps (file hash, title...)
    <collection>_terms    one row a stemmed term: how many passages hold it, for re-ranking by rare
                          terms exactly as the embedded backend does

The collections' description records the embedding model and dimension, checked on every start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from retrieval.errors import IndexMissingError
from retrieval.stores.milvus.vectors import MAX_VARCHAR
from retrieval.stores.terms import STOPWORDS

FORMAT = 1
_REBUILD = "rebuild it with `qabot index --rebuild PATH...`"
DUMMY = "dummy"  # the small tables have a 2-d zero vector: Milvus collections need a vector field
_HEADER = "qabot.header"  # a collection property: format, embedding model and dimension


@dataclass(frozen=True)
class Collections:
    """The collections named after `passages` (`store.collection`), for `embedding_id` vectors of `dimension`."""

    passages: str
    embedding_id: str
    dimension: int
    analyzer: str  # BM25's text analyzer inside Milvus (`store.analyzer`)
    location: str  # for messages

    @property
    def sources(self) -> str:
        return f"{self.passages}_sources"

    @property
    def terms(self) -> str:
        return f"{self.passages}_terms"

    @property
    def names(self) -> tuple[str, str, str]:
        return (self.passages, self.sources, self.terms)

    def create(self, client: Any) -> None:
        from pymilvus import DataType, Function, FunctionType

        header = json.dumps({"qabot_format": FORMAT, "embedding_model": self.embedding_id, "dimension": self.dimension})
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description=header)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("content", DataType.VARCHAR, max_length=MAX_VARCHAR)
        analyzer: dict[str, Any] = {
            "tokenizer": "standard",
            "filter": [{"type": "stop", "stop_words": sorted(STOPWORDS)}],
        }
        if self.analyzer == "english":
            analyzer = {"type": "english"}
        schema.add_field(
            "text", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True, analyzer_params=analyzer
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        for name in ("title", "source", "url"):
            schema.add_field(name, DataType.VARCHAR, max_length=4096)
        schema.add_field("published", DataType.VARCHAR, max_length=32)
        schema.add_field("spans", DataType.JSON)
        schema.add_field("vectors", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_function(
            Function(
                name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]
            )
        )
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
        index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(self.passages, schema=schema, index_params=index, description=header)
        for name, value in ((self.sources, DataType.JSON), (self.terms, DataType.INT64)):
            table = client.create_schema(auto_id=False, enable_dynamic_field=False, description=header)
            table.add_field("id", DataType.VARCHAR, is_primary=True, max_length=4096)
            table.add_field("entry" if value == DataType.JSON else "df", value)
            table.add_field(DUMMY, DataType.FLOAT_VECTOR, dim=2)
            table_index = client.prepare_index_params()
            table_index.add_index(field_name=DUMMY, index_type="AUTOINDEX", metric_type="L2")
            client.create_collection(name, schema=table, index_params=table_index, description=header)
        client.alter_collection_properties(self.passages, properties={_HEADER: header})

    def drop(self, client: Any) -> None:
        for name in self.names:
            if client.has_collection(name):
                client.drop_collection(name)

    def load(self, client: Any) -> None:
        """Load the collections for search (Milvus Lite releases them when the process ends)."""
        for name in self.names:
            if not client.has_collection(name):
                raise IndexMissingError(f"{self.location} lacks its collection {name}: {_REBUILD}", exit_code=2)
            client.load_collection(name)

    def describe(self, client: Any) -> dict[str, Any] | None:
        """Milvus's description of the passage collection; None when it does not exist."""
        if not client.has_collection(self.passages):
            return None
        return client.describe_collection(self.passages)  # type: ignore[no-any-return]

    def check(self, header: dict[str, Any] | None) -> None:
        """Raise IndexMissingError unless `header` is one that this qabot wrote with this embedding model."""
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


def read_header(info: dict[str, Any]) -> dict[str, Any]:
    """The header recorded with the passage collection (`Collections.describe`); {} when it has none."""
    try:
        header = json.loads((info.get("properties") or {}).get(_HEADER) or "{}")
    except ValueError:
        header = {}
    return header if isinstance(header, dict) else {}
