"""The index writer: articles → sentence passages → sentence embeddings, merged with the index on disk.

Ids come from content, so re-indexing a file adds nothing and a changed file replaces its
passages; one writer at a time holds the index folder's lock. A run that finds no passage to
index writes nothing; a damaged index is reported, not updated (`--rebuild` replaces it).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout
from haystack import Document

from retrieval.documents import ArticleLoader, SkippedFile, document_for, iter_article_files
from retrieval.errors import QabotError
from retrieval.files import display_path
from retrieval.retrievers import build_bm25, passage_search_text
from retrieval.settings import IndexSettings
from retrieval.splitter import SentencePassageSplitter
from retrieval.store import IndexData, IndexWriteError, PassageRecord, index_exists, load_index, save_index

# progress(stage, done, total): front ends draw it; the engine never prints.
Progress = Callable[[str, int, int], None]
# expired(sources) -> the sources to drop from the index (retention of web articles).
Expired = Callable[[dict[str, dict[str, Any]]], set[str]]
# What a web article's Document carries beyond title and source, kept in the manifest's sources.
WEB_META = ("published", "url", "fetched")


def no_progress(stage: str, done: int, total: int) -> None:
    return None


class NothingToIndexError(QabotError):
    """No article under the given paths gave a passage; `skipped` says why for each file seen."""

    def __init__(self, origin: str, skipped: list[SkippedFile], hint: str = "") -> None:
        why = f"all {len(skipped)} file(s) were skipped" if skipped else "no .txt, .md or .html file found"
        super().__init__(f"nothing to index in {origin}: {why}{hint}", exit_code=2)
        self.origin = origin
        self.skipped = skipped


def describe_paths(paths: Sequence[Path]) -> str:
    """Paths as one printable line, for messages."""
    return ", ".join(display_path(path) for path in paths) or "no path"


@dataclass
class IndexReport:
    """What one `index` run did."""

    files_indexed: int = 0
    files_unchanged: int = 0
    files_changed: int = 0  # of files_indexed, those that replaced an older version
    sources_dropped: int = 0
    passages_added: int = 0
    passages_total: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0


def passage_vectors(sentence_vectors: np.ndarray, sentences_per_passage: list[int]) -> np.ndarray:
    """A passage's vector is the normalised mean of its sentences' vectors.

    The sentences are embedded anyway (for the sentence answer); embedding each passage too
    would double the indexing work for no better retrieval (measured on XQuAD: same recall).
    """
    dimension = sentence_vectors.shape[1] if sentence_vectors.ndim == 2 else 0
    if not sentences_per_passage:
        return np.zeros((0, dimension), dtype=np.float32)
    bounds = np.cumsum([0, *sentences_per_passage[:-1]])
    sums = np.add.reduceat(sentence_vectors, bounds, axis=0)
    return (sums / np.clip(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


def articles_in_files(
    paths: Sequence[Path], max_file_mb: float, progress: Progress
) -> Iterator[Document | SkippedFile]:
    """The articles under `paths`, read one file at a time (or why a file is skipped).

    The files are listed at once, so that a missing path is an error before anything is written.
    """
    files = list(iter_article_files([Path(p) for p in paths]))
    loader = ArticleLoader(max_file_mb=max_file_mb)

    def articles() -> Iterator[Document | SkippedFile]:
        for number, path in enumerate(files, 1):
            progress("reading", number, len(files))
            yield loader.load(path)

    return articles()


def articles_from_documents(documents: Sequence[Document]) -> list[Document]:
    """Ready-made article Documents (meta: title, source) as the loader would make them."""
    return [
        document_for(
            d.content or "",
            title=d.meta.get("title", ""),
            source=d.meta.get("source") or d.id,
            file_hash=d.meta.get("file_hash"),
        )
        for d in documents
    ]


@dataclass(frozen=True)
class IndexWriter:
    """Adds articles to the index in `index_dir`: splits, embeds the sentences, merges and saves atomically.

    `document_embedder()` gives the sentence embedder (loaded only when there is something to
    embed); `on_saved()` is called once a new index is live, before the folder's lock is released.
    """

    index_dir: Path
    settings: IndexSettings
    embedding_id: str
    embedding_model_path: Path
    document_embedder: Callable[[], Any]
    on_saved: Callable[[], None]

    def write(
        self,
        articles: Iterable[Document | SkippedFile],
        rebuild: bool,
        progress: Progress,
        origin: str = "the given articles",
        expired: Expired | None = None,
    ) -> IndexReport:
        """Merge `articles` into the index; `origin` names where they come from in error messages,
        `expired(sources)` names sources to drop (retention).
        """
        started = time.perf_counter()
        fresh = not self.index_dir.exists()
        lock_file = self.index_dir / ".lock"
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(lock_file))
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise QabotError(
                f"another qabot is indexing into {display_path(self.index_dir)}: wait for it to finish, then try again",
                exit_code=3,
            ) from exc
        except OSError as exc:
            raise IndexWriteError(self.index_dir, exc) from exc
        try:
            report = self._write_locked(articles, rebuild, progress, origin, expired)
        except NothingToIndexError:
            if fresh:  # leave no empty index folder behind
                lock.release()
                with contextlib.suppress(OSError):
                    lock_file.unlink(missing_ok=True)
                    self.index_dir.rmdir()
            raise
        finally:
            lock.release()
        report.seconds = time.perf_counter() - started
        return report

    def _write_locked(
        self,
        articles: Iterable[Document | SkippedFile],
        rebuild: bool,
        progress: Progress,
        origin: str,
        expired: Expired | None,
    ) -> IndexReport:
        report = IndexReport()
        old = None if rebuild or not index_exists(self.index_dir) else load_index(self.index_dir, self.embedding_id)
        splitter = SentencePassageSplitter(
            passage_words=self.settings.passage_words,
            overlap_sentences=self.settings.overlap_sentences,
            max_passages=self.settings.max_passages_per_file,
        )
        sources: dict[str, dict[str, Any]] = dict(old.sources) if old else {}
        new_passages: list[Document] = []
        replaced: set[str] = set()
        for article in articles:
            if isinstance(article, SkippedFile):
                report.skipped.append(article)
                continue
            source, file_hash = article.meta["source"], article.meta["file_hash"]
            if sources.get(source, {}).get("file_hash") == file_hash and source not in replaced:
                report.files_unchanged += 1
                continue
            passages = splitter.run(documents=[article])["documents"]
            if not passages:
                report.skipped.append(SkippedFile(source, "no sentences found"))
                continue
            if source in replaced:  # the same source twice in one run: the last one wins
                new_passages = [p for p in new_passages if p.meta["source"] != source]
            if source in sources and source not in replaced:
                report.files_changed += 1
            replaced.add(source)
            new_passages.extend(passages)
            sources[source] = {
                "file_hash": file_hash,
                "title": article.meta.get("title", ""),
                "passages": len(passages),
                **{key: article.meta[key] for key in WEB_META if article.meta.get(key)},
            }
            report.files_indexed += 1
        if not report.files_indexed and not report.files_unchanged and expired is None:
            raise NothingToIndexError(origin, report.skipped)
        dropped = expired(sources) if expired is not None else set()
        for source in dropped:
            del sources[source]
        report.sources_dropped = len(dropped)
        replaced |= dropped
        new_passages = [p for p in new_passages if p.meta["source"] not in dropped]
        if old is not None and not replaced:
            report.passages_total = len(old)
            return report
        new_passages = list({p.id: p for p in new_passages}.values())
        data = self._merge(old, new_passages, replaced, progress)
        data.sources = sources
        texts = [passage_search_text(p) for p in data.passages]
        save_index(self.index_dir, data, write_extra=lambda folder: build_bm25(texts, folder / "bm25"))
        report.passages_added = len(new_passages)
        report.passages_total = len(data.passages)
        self.on_saved()
        return report

    def _embed(self, embedder: Any, documents: list[Document], stage: str, progress: Progress) -> np.ndarray:
        dimension = self._dimension()
        vectors = np.zeros((len(documents), dimension), dtype=np.float32)
        step = self.settings.batch_size * 4
        # Loading the model (and, the first time, exporting it to ONNX) takes a few seconds.
        progress("loading the model", 0, 1)
        embedder.warm_up()
        progress("loading the model", 1, 1)
        progress(stage, 0, len(documents))
        for start in range(0, len(documents), step):
            batch = embedder.run(documents=documents[start : start + step])["documents"]
            vectors[start : start + len(batch)] = [doc.embedding for doc in batch]
            progress(stage, min(start + step, len(documents)), len(documents))
        return vectors

    def _dimension(self) -> int:
        config = json.loads((self.embedding_model_path / "config.json").read_text())
        return int(config.get("hidden_size") or config.get("dim") or config["d_model"])

    def _merge(
        self, old: IndexData | None, new_passages: list[Document], replaced: set[str], progress: Progress
    ) -> IndexData:
        dimension = self._dimension()
        data = IndexData.empty(self.embedding_id, dimension)
        kept_rows = [] if old is None else [i for i, p in enumerate(old.passages) if p.source not in replaced]
        records = [old.passages[i] for i in kept_rows] if old else []
        records += [
            PassageRecord(
                id=p.id,
                content=p.content or "",
                title=p.meta.get("title", ""),
                source=p.meta.get("source", ""),
                sentence_spans=p.meta["sentence_spans"],
                published=p.meta.get("published", ""),
                url=p.meta.get("url", ""),
            )
            for p in new_passages
        ]
        sentence_docs = [
            Document(content=(p.content or "")[start:end])
            for p in new_passages
            for start, end in p.meta["sentence_spans"]
        ]
        new_sentence_vectors = (
            self._embed(self.document_embedder(), sentence_docs, "embedding sentences", progress)
            if sentence_docs
            else np.zeros((0, dimension), np.float32)
        )
        new_passage_vectors = passage_vectors(
            new_sentence_vectors, [len(p.meta["sentence_spans"]) for p in new_passages]
        )
        new_rows = np.repeat(
            np.arange(len(new_passages), dtype=np.int32) + len(kept_rows),
            [len(p.meta["sentence_spans"]) for p in new_passages],
        ).astype(np.int32)
        if old is not None and kept_rows:
            kept = np.asarray(kept_rows)
            remap = np.full(len(old.passages), -1, dtype=np.int32)
            remap[kept] = np.arange(len(kept), dtype=np.int32)
            sentence_keep = np.isin(old.sentence_rows, kept)
            old_passage_vectors = np.asarray(old.passage_embeddings[kept])
            old_sentence_vectors = np.asarray(old.sentence_embeddings[sentence_keep])
            old_rows = remap[np.asarray(old.sentence_rows[sentence_keep])]
        else:
            old_passage_vectors = np.zeros((0, dimension), np.float32)
            old_sentence_vectors = np.zeros((0, dimension), np.float32)
            old_rows = np.zeros((0,), np.int32)
        data.passages = records
        data.passage_embeddings = np.vstack([old_passage_vectors, new_passage_vectors]).astype(np.float32)
        data.sentence_embeddings = np.vstack([old_sentence_vectors, new_sentence_vectors]).astype(np.float32)
        data.sentence_rows = np.concatenate([old_rows, new_rows]).astype(np.int32)
        return data
