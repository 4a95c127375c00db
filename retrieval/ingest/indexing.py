"""The index writer: articles → sentence passages → sentence embeddings, handed to the passage store.

Ids come from content, so re-indexing a file adds nothing and a changed file replaces its
passages; one writer at a time holds the store's lock. A run that finds no passage to index
writes nothing; a damaged index is reported, not updated (`--rebuild` replaces it). The same
writer serves every backend (`retrieval/stores/protocol.py`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document

from retrieval.errors import InputError, QabotError
from retrieval.files import display_path
from retrieval.ingest.articles import ArticleLoader, SkippedFile, document_for, iter_article_files
from retrieval.ingest.splitter import SentencePassageSplitter
from retrieval.settings import IndexSettings
from retrieval.stores.protocol import PassageRecord, PassageStore, StoreUpdate

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
        why = f"all {len(skipped)} file(s) were skipped" if skipped else "no .txt, .md, .html, .pdf or .docx file found"
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
    # The paths named to index (files or folders) that gave no article, and why.
    inputs_failed: list[SkippedFile] = field(default_factory=list)
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


class FileArticles:
    """The articles under the named `paths`, read one file at a time (or why a file is skipped), and
    which named path gave which, to tell the paths that gave nothing (`failed`).

    The files are listed at once, so that a missing path is an error before anything is written.
    """

    def __init__(self, paths: Sequence[Path], max_file_mb: float, progress: Progress) -> None:
        self.paths = [Path(p) for p in paths]
        self.max_file_mb = max_file_mb
        self.progress = progress
        # (file, the number of the named path it is under, whether it was named itself)
        self.files = [
            (file, number, file == path)
            for number, path in enumerate(self.paths)
            for file in iter_article_files([path])
        ]
        self._read: dict[int, set[str]] = {number: set() for number in range(len(self.paths))}

    def __iter__(self) -> Iterator[Document | SkippedFile]:
        loader = ArticleLoader(max_file_mb=self.max_file_mb)
        for count, (file, number, named) in enumerate(self.files, 1):
            self.progress("reading", count, len(self.files))
            article = loader.load(file, named=named)
            if isinstance(article, Document):
                self._read[number].add(article.meta["source"])
            yield article

    def failed(self, report: IndexReport) -> list[SkippedFile]:
        """The named paths of which no file was indexed or found unchanged, with why."""
        unread = {skipped.path for skipped in report.skipped}
        failed = []
        for number, path in enumerate(self.paths):
            if self._read[number] - unread:
                continue
            under = [file for file, origin, _ in self.files if origin == number]
            if path.is_dir():
                why = f"all {len(under)} file(s) were skipped" if under else "no file in it"
                failed.append(SkippedFile(display_path(path), why))
            else:
                reasons = [
                    s.reason for s in report.skipped if s.path in {display_path(path), display_path(path.resolve())}
                ]
                failed.append(SkippedFile(display_path(path), reasons[0] if reasons else "skipped"))
        return failed


def articles_in_files(paths: Sequence[Path], max_file_mb: float, progress: Progress) -> FileArticles:
    """The articles under `paths`, read one file at a time (or why a file is skipped): see FileArticles."""
    return FileArticles(paths, max_file_mb, progress)


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
    """Adds articles to a passage store: splits, embeds the sentences, and hands the store the result.

    `document_embedder()` gives the sentence embedder (loaded only when there is something to
    embed); `on_saved()` is called once the store has the new passages, before its lock is released.
    """

    store: PassageStore
    settings: IndexSettings
    dimension: int
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
        with self.store.writer_lock():
            report = self._write_locked(articles, rebuild, progress, origin, expired)
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, sources: Sequence[str], progress: Progress) -> IndexReport:
        """Delete the articles `sources` (as `qabot index` named them) and their passages."""
        started = time.perf_counter()
        with self.store.writer_lock():
            table = self.store.sources()
            named = {name: source_named(name, table) for name in sources}
            unknown = [name for name, source in named.items() if source is None]
            if unknown:
                raise InputError(
                    f"not in the index: {', '.join(unknown)} (see the sources with `qabot sources`)", exit_code=2
                )
            sources = [source for source in named.values() if source is not None]
            report = IndexReport(sources_dropped=len(set(sources)))
            update = StoreUpdate(
                passages=[],
                passage_vectors=np.zeros((0, self.dimension), np.float32),
                sentence_vectors=np.zeros((0, self.dimension), np.float32),
                replaced=set(sources),
                sources={key: value for key, value in table.items() if key not in set(sources)},
            )
            self.store.write(update, progress)
            report.passages_total = self.store.count()
            self.on_saved()
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
        existing = not rebuild and self.store.exists()
        if existing:
            self.store.check()  # a damaged index, or one of another model, is reported, not updated
        splitter = SentencePassageSplitter(
            passage_words=self.settings.passage_words,
            overlap_sentences=self.settings.overlap_sentences,
            max_passages=self.settings.max_passages_per_file,
        )
        sources: dict[str, dict[str, Any]] = self.store.sources() if existing else {}
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
        if existing and not replaced:
            report.passages_total = self.store.count()
            return report
        new_passages = list({p.id: p for p in new_passages}.values())
        self.store.write(self._update(new_passages, replaced, sources, rebuild, progress), progress)
        report.passages_added = len(new_passages)
        report.passages_total = self.store.count()
        self.on_saved()
        return report

    def _embed(self, embedder: Any, documents: list[Document], stage: str, progress: Progress) -> np.ndarray:
        vectors = np.zeros((len(documents), self.dimension), dtype=np.float32)
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

    def _update(
        self,
        new_passages: list[Document],
        replaced: set[str],
        sources: dict[str, dict[str, Any]],
        rebuild: bool,
        progress: Progress,
    ) -> StoreUpdate:
        """The new passages as records, with their sentences embedded and their passage vectors."""
        records = [
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
            Document(content=record.content[start:end]) for record in records for start, end in record.sentence_spans
        ]
        sentence_vectors = (
            self._embed(self.document_embedder(), sentence_docs, "embedding sentences", progress)
            if sentence_docs
            else np.zeros((0, self.dimension), np.float32)
        )
        counts = [len(record.sentence_spans) for record in records]
        return StoreUpdate(
            passages=records,
            passage_vectors=passage_vectors(sentence_vectors, counts).reshape(len(records), self.dimension),
            sentence_vectors=sentence_vectors,
            replaced=replaced,
            sources=sources,
            rebuild=rebuild,
        )


SHORT_ID_LENGTH = 8


def short_id(source: str) -> str:
    """A source's short id (the Telegram admins' /list and /remove): the first hex digits of its
    SHA-256, the same on every run."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:SHORT_ID_LENGTH]


def source_named(name: str, table: dict[str, dict[str, Any]]) -> str | None:
    """The indexed source a user means by `name`: the source itself, a file's path as given (a file's
    source is its absolute path), its file name, its title (any case) or its short id, when exactly
    one source answers to it; None otherwise. An ambiguous name is an error that says so."""
    if name in table:
        return name
    path = str(Path(name).expanduser().resolve())
    if path in table:
        return path
    wanted = name.strip().casefold()
    for means in (
        lambda source, entry: Path(source).name.casefold() == wanted,
        lambda source, entry: str(entry.get("title", "")).strip().casefold() == wanted,
        lambda source, entry: short_id(source) == wanted,
    ):
        found = [source for source, entry in table.items() if means(source, entry)]
        if len(found) > 1:
            raise InputError(
                f"{name!r} names {len(found)} articles: give the source as `qabot sources` lists it", exit_code=2
            )
        if found:
            return found[0]
    return None
