"""The passage index on disk: passages, their sentences, embeddings and a BM25 index, with a manifest.

Layout of an index folder:

    CURRENT            name of the live generation (replaced atomically)
    gen-<id>/          one complete generation
        manifest.json  format version, embedding model and dimension, counts, sources, the checksum
                       of every other file of the generation, and a checksum of itself
        passages.jsonl one passage a line: id, content, title, source, sentence_spans, published, url
        passage_embeddings.npy, sentence_embeddings.npy, sentence_rows.npy  (float32 / int32)
        bm25/          the bm25s index

A write builds a new generation beside the live one and then swaps CURRENT, so a crash or kill
mid-write leaves the previous index whole, and a failed write (a full disk) removes what it wrote.
Loading checks every file against the manifest. Embeddings are memory-mapped on load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from retrieval.errors import IndexMissingError, QabotError
from retrieval.files import FileRefusedError, display_path, no_space_left, open_regular_file, read_regular_file
from retrieval.stores.protocol import PassageRecord

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
_ARRAYS = ("passage_embeddings.npy", "sentence_embeddings.npy", "sentence_rows.npy")
_REQUIRED_FILES = ("passages.jsonl", *_ARRAYS)
_GENERATION_NAME = re.compile(r"gen-[0-9A-Za-z-]{1,64}")
_MAX_MANIFEST_BYTES = 1 << 30
REBUILD_HINT = "rebuild it with `qabot index --rebuild PATH...`"


class IndexDamagedError(QabotError):
    """The index on disk is damaged, truncated or was built for another embedding model."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


def _damaged(index_dir: Path, why: str) -> IndexDamagedError:
    return IndexDamagedError(f"the index in {display_path(index_dir)} is damaged ({why}): {REBUILD_HINT}")


class _SourceEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    file_hash: str
    title: str
    passages: int = Field(ge=0)
    # Web articles only: their date, address and the day they were last fetched (YYYY-MM-DD).
    published: str = ""
    url: str = ""
    fetched: str = ""


class _Manifest(BaseModel):
    """What a generation's manifest.json must hold; anything else is damage."""

    model_config = ConfigDict(strict=True, extra="forbid")
    format_version: int
    embedding_model: str
    dimension: int = Field(gt=0)
    passage_count: int = Field(ge=0)
    sentence_count: int = Field(ge=0)
    sources: dict[str, _SourceEntry]
    # sha256 of every other file of the generation, by its path in the generation (bm25/ included).
    checksums: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]]
    created: str
    # sha256 of the manifest's other fields (see _manifest_digest): a changed byte here is found too.
    manifest_checksum: str


def _manifest_digest(manifest: dict[str, Any]) -> str:
    fields = {key: value for key, value in manifest.items() if key != "manifest_checksum"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=True).encode("ascii")).hexdigest()


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
    with open_regular_file(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _generation_files(generation: Path) -> list[str]:
    """Every file of a generation but its manifest, as paths relative to the generation."""
    return sorted(
        path.relative_to(generation).as_posix()
        for path in generation.rglob("*")
        if path.name != MANIFEST and not path.is_dir()
    )


def _read_text(path: Path, max_bytes: int) -> str:
    return read_regular_file(path, max_bytes).decode("utf-8")


def current_generation(index_dir: Path) -> Path | None:
    """The live generation's folder; None when there is no index, IndexDamagedError when CURRENT is bad."""
    pointer = index_dir / "CURRENT"
    if not os.path.lexists(pointer):
        return None
    try:
        name = _read_text(pointer, max_bytes=256).strip()
    except (FileRefusedError, UnicodeDecodeError) as exc:
        raise _damaged(index_dir, f"CURRENT cannot be read: {exc}") from exc
    if not _GENERATION_NAME.fullmatch(name):
        raise _damaged(index_dir, "CURRENT does not name a generation")
    generation = index_dir / name
    if not generation.is_dir():
        raise _damaged(index_dir, f"its generation {name} is missing")
    return generation


def index_exists(index_dir: Path) -> bool:
    return current_generation(index_dir) is not None


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The live generation's manifest, checked field by field; damage raises IndexDamagedError."""
    generation = current_generation(index_dir)
    if generation is None:
        raise IndexMissingError(
            f"no index in {display_path(index_dir)}: build one with `qabot index PATH...`", exit_code=2
        )
    try:
        manifest = json.loads(_read_text(generation / MANIFEST, _MAX_MANIFEST_BYTES))
    except (FileRefusedError, ValueError, RecursionError) as exc:
        raise _damaged(index_dir, "manifest unreadable") from exc
    if not isinstance(manifest, dict):
        raise _damaged(index_dir, "manifest is not a JSON object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexDamagedError(
            f"the index in {display_path(index_dir)} has format {manifest.get('format_version')!r}, "
            f"this qabot reads {FORMAT_VERSION}: {REBUILD_HINT}"
        )
    if manifest.get("manifest_checksum") != _manifest_digest(manifest):
        raise _damaged(index_dir, "manifest fails its checksum")
    try:
        return _Manifest.model_validate(manifest).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise _damaged(index_dir, f"manifest field {where}: {first['msg']}") from exc


def _verify_checksums(index_dir: Path, generation: Path, checksums: dict[str, str]) -> None:
    """Every file of the generation is listed in the manifest, present and unchanged."""
    on_disk = set(_generation_files(generation))
    for name in sorted({*checksums, *_REQUIRED_FILES, *on_disk}):
        if name not in checksums:
            raise _damaged(index_dir, f"{name} is not in its manifest")
        if name not in on_disk:
            raise _damaged(index_dir, f"{name} is missing")
        try:
            matches = _sha256(generation / name) == checksums[name]
        except FileRefusedError as exc:
            raise _damaged(index_dir, f"{name} {exc.reason}") from exc
        if not matches:
            raise _damaged(index_dir, f"{name} fails its checksum")


def load_index(index_dir: Path, embedding_model: str, verify: bool = True) -> IndexData:
    """Load the live generation; damage or a model mismatch raises IndexDamagedError naming the fix."""
    manifest = read_manifest(index_dir)
    generation = current_generation(index_dir)
    assert generation is not None
    if manifest["embedding_model"] != embedding_model:
        raise IndexDamagedError(
            f"the index in {display_path(index_dir)} was built with embedding model "
            f"{manifest['embedding_model']!r}, not the configured {embedding_model!r}: {REBUILD_HINT}"
        )
    if verify:
        _verify_checksums(index_dir, generation, manifest["checksums"])
    try:
        with (generation / "passages.jsonl").open(encoding="utf-8") as handle:
            passages = [PassageRecord(**json.loads(line)) for line in handle]
        arrays = [np.load(generation / name, mmap_mode="r") for name in _ARRAYS]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _damaged(index_dir, type(exc).__name__) from exc
    dimension = manifest["dimension"]
    if (
        len(passages) != manifest["passage_count"]
        or arrays[0].shape != (len(passages), dimension)
        or arrays[1].shape != (manifest["sentence_count"], dimension)
        or arrays[2].shape != (manifest["sentence_count"],)
    ):
        raise _damaged(index_dir, "sizes do not match its manifest")
    return IndexData(
        embedding_model=embedding_model,
        dimension=dimension,
        passages=passages,
        passage_embeddings=arrays[0],
        sentence_embeddings=arrays[1],
        sentence_rows=arrays[2],
        sources=manifest["sources"],
        folder=generation,
    )


class IndexWriteError(QabotError):
    """The index could not be written (full disk, no permission); the old index is left as it was."""

    def __init__(self, index_dir: Path, error: OSError) -> None:
        where = display_path(index_dir)
        if no_space_left(error, index_dir):
            message = f"no space left on device in {where}: free some space, then index again"
        else:
            message = f"cannot write the index in {where}: {error.strerror or error}"
        super().__init__(f"{message} (the index there is unchanged)", exit_code=2)


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _live_generation_name(index_dir: Path) -> str:
    """The live generation's name, or "" when there is none or CURRENT is damaged (a rebuild)."""
    try:
        generation = current_generation(index_dir)
    except IndexDamagedError:
        return ""
    return generation.name if generation else ""


def save_index(index_dir: Path, data: IndexData, write_extra: Any = None) -> Path:
    """Write `data` as a new generation and make it live; `write_extra(folder)` adds more files first.

    A failed write removes what it wrote and raises IndexWriteError; generations left behind by
    earlier crashes are removed first, so that they cannot fill the disk.
    """
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexWriteError(index_dir, exc) from exc
    live = _live_generation_name(index_dir)
    _remove_stale_generations(index_dir, keep={live})
    generation = index_dir / f"gen-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
    try:
        generation.mkdir()
        _write_generation(generation, data, write_extra)
        _atomic_write_text(index_dir / "CURRENT", generation.name + "\n")
    except BaseException as exc:
        error = IndexWriteError(index_dir, exc) if isinstance(exc, OSError) else None  # while the disk is full
        shutil.rmtree(generation, ignore_errors=True)
        if error is not None:
            raise error from exc
        raise
    _remove_stale_generations(index_dir, keep={generation.name, live})
    return generation


def _write_generation(generation: Path, data: IndexData, write_extra: Any) -> None:
    with (generation / "passages.jsonl").open("w", encoding="utf-8") as handle:
        for passage in data.passages:
            handle.write(json.dumps(passage.__dict__, ensure_ascii=False) + "\n")
    arrays = (data.passage_embeddings, data.sentence_embeddings, data.sentence_rows)
    for name, array in zip(_ARRAYS, arrays, strict=True):
        np.save(generation / name, np.ascontiguousarray(array))
    if write_extra is not None:
        write_extra(generation)
    files = _generation_files(generation)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "embedding_model": data.embedding_model,
        "dimension": data.dimension,
        "passage_count": len(data.passages),
        "sentence_count": int(data.sentence_rows.shape[0]),
        "sources": data.sources,
        "checksums": {name: _sha256(generation / name) for name in files},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    manifest["manifest_checksum"] = _manifest_digest(manifest)
    for name in files:
        with (generation / name).open("rb") as handle:
            os.fsync(handle.fileno())
    _atomic_write_text(generation / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=True))


def _remove_stale_generations(index_dir: Path, keep: set[str]) -> None:
    """Drop generations that are neither live nor the one just replaced (readers may still map it)."""
    for folder in index_dir.glob("gen-*"):
        if folder.name not in keep and folder.is_dir() and not folder.is_symlink():
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)
