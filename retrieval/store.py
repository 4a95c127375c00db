"""The passage index on disk: passages, their sentences, embeddings and a BM25 index, with a manifest.

Layout of an index folder:

    CURRENT            name of the live generation (replaced atomically)
    gen-<id>/          one complete generation
        manifest.json  format version, embedding model and dimension, counts, sources, checksums
        passages.jsonl one passage a line: id, content, title, source, sentence_spans
        passage_embeddings.npy, sentence_embeddings.npy, sentence_rows.npy  (float32 / int32)
        bm25/          the bm25s index

A write builds a new generation beside the live one and then swaps CURRENT, so a crash or kill
mid-write leaves the previous index whole. Embeddings are memory-mapped on load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.errors import IndexMissingError, QabotError

FORMAT_VERSION = 1
_ARRAYS = ("passage_embeddings.npy", "sentence_embeddings.npy", "sentence_rows.npy")
_CHECKED_FILES = ("passages.jsonl", *_ARRAYS)
REBUILD_HINT = "rebuild it with `qabot index --rebuild PATH...`"


class IndexDamagedError(QabotError):
    """The index on disk is damaged, truncated or was built for another embedding model."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


@dataclass
class PassageRecord:
    id: str
    content: str
    title: str
    source: str
    sentence_spans: list[list[int]]

    def sentences(self) -> list[str]:
        return [self.content[start:end] for start, end in self.sentence_spans]


@dataclass
class IndexData:
    """A whole index in memory (embeddings may be memory-mapped)."""

    embedding_model: str
    dimension: int
    passages: list[PassageRecord] = field(default_factory=list)
    passage_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    sentence_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    sentence_rows: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folder: Path | None = None
    _sentence_starts: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def empty(cls, embedding_model: str, dimension: int) -> IndexData:
        return cls(
            embedding_model=embedding_model,
            dimension=dimension,
            passage_embeddings=np.zeros((0, dimension), np.float32),
            sentence_embeddings=np.zeros((0, dimension), np.float32),
        )

    def __len__(self) -> int:
        return len(self.passages)

    @property
    def sentence_starts(self) -> np.ndarray:
        """Row of each passage's first sentence; passage i's sentences are rows starts[i]..starts[i+1]."""
        if self._sentence_starts is None or self._sentence_starts.shape[0] != len(self.passages) + 1:
            self._sentence_starts = np.searchsorted(
                np.asarray(self.sentence_rows), np.arange(len(self.passages) + 1), side="left"
            )
        return self._sentence_starts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def current_generation(index_dir: Path) -> Path | None:
    pointer = index_dir / "CURRENT"
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    return index_dir / name if name else None


def index_exists(index_dir: Path) -> bool:
    return current_generation(index_dir) is not None


def read_manifest(index_dir: Path) -> dict[str, Any]:
    generation = current_generation(index_dir)
    if generation is None:
        raise IndexMissingError(f"no index in {index_dir}: build one with `qabot index PATH...`", exit_code=2)
    try:
        return json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexDamagedError(f"the index in {index_dir} is damaged (manifest unreadable): {REBUILD_HINT}") from exc


def load_index(index_dir: Path, embedding_model: str, verify: bool = True) -> IndexData:
    """Load the live generation; damage or a model mismatch raises IndexDamagedError naming the fix."""
    manifest = read_manifest(index_dir)
    generation = current_generation(index_dir)
    assert generation is not None
    damaged = f"the index in {index_dir} is damaged"
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexDamagedError(
            f"the index in {index_dir} has format {manifest.get('format_version')}, "
            f"this qabot reads {FORMAT_VERSION}: {REBUILD_HINT}"
        )
    if manifest.get("embedding_model") != embedding_model:
        raise IndexDamagedError(
            f"the index in {index_dir} was built with embedding model {manifest.get('embedding_model')!r}, "
            f"not the configured {embedding_model!r}: {REBUILD_HINT}"
        )
    try:
        if verify:
            for name in _CHECKED_FILES:
                if _sha256(generation / name) != manifest["checksums"][name]:
                    raise IndexDamagedError(f"{damaged} ({name} fails its checksum): {REBUILD_HINT}")
        with (generation / "passages.jsonl").open(encoding="utf-8") as handle:
            passages = [PassageRecord(**json.loads(line)) for line in handle]
        arrays = [np.load(generation / name, mmap_mode="r") for name in _ARRAYS]
    except IndexDamagedError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexDamagedError(f"{damaged} ({type(exc).__name__}): {REBUILD_HINT}") from exc
    dimension = int(manifest["dimension"])
    if (
        len(passages) != manifest["passage_count"]
        or arrays[0].shape != (len(passages), dimension)
        or arrays[1].shape != (manifest["sentence_count"], dimension)
        or arrays[2].shape != (manifest["sentence_count"],)
    ):
        raise IndexDamagedError(f"{damaged} (sizes do not match its manifest): {REBUILD_HINT}")
    return IndexData(
        embedding_model=embedding_model,
        dimension=dimension,
        passages=passages,
        passage_embeddings=arrays[0],
        sentence_embeddings=arrays[1],
        sentence_rows=arrays[2],
        sources=manifest.get("sources", {}),
        folder=generation,
    )


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def save_index(index_dir: Path, data: IndexData, write_extra: Any = None) -> Path:
    """Write `data` as a new generation and make it live; `write_extra(folder)` adds more files first."""
    index_dir.mkdir(parents=True, exist_ok=True)
    generation = index_dir / f"gen-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
    generation.mkdir()
    with (generation / "passages.jsonl").open("w", encoding="utf-8") as handle:
        for passage in data.passages:
            handle.write(json.dumps(passage.__dict__, ensure_ascii=False) + "\n")
    arrays = (data.passage_embeddings, data.sentence_embeddings, data.sentence_rows)
    for name, array in zip(_ARRAYS, arrays, strict=True):
        np.save(generation / name, np.ascontiguousarray(array))
    if write_extra is not None:
        write_extra(generation)
    manifest = {
        "format_version": FORMAT_VERSION,
        "embedding_model": data.embedding_model,
        "dimension": data.dimension,
        "passage_count": len(data.passages),
        "sentence_count": int(data.sentence_rows.shape[0]),
        "sources": data.sources,
        "checksums": {name: _sha256(generation / name) for name in _CHECKED_FILES},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for path in [*generation.rglob("*"), generation]:
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    _atomic_write_text(generation / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False))
    previous = current_generation(index_dir)
    _atomic_write_text(index_dir / "CURRENT", generation.name + "\n")
    _remove_stale_generations(index_dir, keep={generation.name, previous.name if previous else ""})
    return generation


def _remove_stale_generations(index_dir: Path, keep: set[str]) -> None:
    """Drop generations that are neither live nor the one just replaced (readers may still map it)."""
    for folder in index_dir.glob("gen-*"):
        if folder.name not in keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)
