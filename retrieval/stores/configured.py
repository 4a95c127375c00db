"""Opening the configured passage store (`store.backend`): the embedded index folder or Milvus."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from retrieval.settings import Settings
from retrieval.stores.embedded.backend import EmbeddedStore
from retrieval.stores.protocol import PassageStore, StoreUpdate

if TYPE_CHECKING:
    from retrieval.stores.milvus.backend import MilvusStore


def open_store(settings: Settings, embedding_id: str, dimension: int) -> PassageStore:
    """The store `settings` name; Milvus's client is imported only when it is the one configured."""
    if settings.store.backend == "milvus":
        return _milvus_store(settings, embedding_id, dimension)
    return EmbeddedStore(settings.index_dir, embedding_id, dimension)


def _milvus_store(settings: Settings, embedding_id: str, dimension: int) -> MilvusStore:
    """The Milvus store of `settings`, with its token (from $MILVUS_TOKEN or store.token_file)."""
    from retrieval.secrets import read_secret
    from retrieval.stores.milvus.backend import MilvusStore

    token = read_secret("MILVUS_TOKEN", settings.store.token_file, "Milvus token", "store.token_file")
    return MilvusStore(settings, embedding_id, dimension, token=token)


def copy_embedded_to_milvus(
    settings: Settings, embedding_id: str, dimension: int, progress: Callable[[str, int, int], None], batch: int = 2000
) -> int:
    """Copy the embedded index (`index.dir`) into the configured Milvus collection, replacing what is
    there, with the vectors as they are (nothing is embedded again). Returns the passages copied."""
    data = EmbeddedStore(settings.index_dir, embedding_id, dimension).data
    target = _milvus_store(settings, embedding_id, dimension)
    starts = data.sentence_starts
    total = len(data)
    with target.writer_lock():
        for first in range(0, max(total, 1), batch):
            last = min(first + batch, total)
            update = StoreUpdate(
                passages=data.passages[first:last],
                passage_vectors=np.asarray(data.passage_embeddings[first:last]),
                sentence_vectors=np.asarray(data.sentence_embeddings[int(starts[first]) : int(starts[last])]),
                replaced=set(),
                sources=data.sources,
                rebuild=first == 0,
            )
            target.write(update, lambda stage, done, of: None)
            progress("copying to Milvus", last, total)
    return total
