"""The one entry point of the engine: index articles, then `QAEngine.ask(question, history) -> Answer`.

Every front end (CLI chat, Telegram, evaluation) calls this and nothing below it.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout
from haystack import Document, Pipeline
from haystack.components.joiners import DocumentJoiner

from retrieval.answer import Answer, Passage, Turn
from retrieval.answerers import ExtractiveAnswerer, SentenceReader
from retrieval.documents import ArticleLoader, SkippedFile, document_for, iter_article_files
from retrieval.errors import IndexMissingError, InputError, QabotError
from retrieval.followup import FollowUpContextualizer
from retrieval.models import ResolvedModel, resolve_model
from retrieval.onnx_embedding import OnnxDocumentEmbedder, OnnxEmbedder, OnnxTextEmbedder
from retrieval.rerank import SentenceEvidenceRanker
from retrieval.retrievers import BM25PassageRetriever, DensePassageRetriever, build_bm25, passage_search_text
from retrieval.settings import Settings
from retrieval.splitter import SentencePassageSplitter
from retrieval.store import IndexData, PassageRecord, index_exists, load_index, save_index

# progress(stage, done, total): front ends draw it; the engine never prints.
Progress = Callable[[str, int, int], None]


@dataclass
class IndexReport:
    """What one `index` run did."""

    files_indexed: int = 0
    files_unchanged: int = 0
    passages_added: int = 0
    passages_total: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    seconds: float = 0.0


def clean_question(question: str) -> str:
    """The question as the models can take it: valid Unicode, no control characters, single spaces."""
    text = str(question).encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    text = "".join(" " if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in text)
    return " ".join(text.split())


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


def _cleaned(turn: Turn) -> Turn:
    return Turn(clean_question(turn.question), turn.answer)


def _quiet_transformers() -> None:
    """Model loading draws its own progress bars and warnings; front ends show their own."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


class QAEngine:
    """Loads the index and the models once; answers questions from many threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.index_dir = settings.index_dir
        self.embedding_model: ResolvedModel = resolve_model(settings.models.embedding, settings.models.cache_dir)
        if not self.embedding_model.available:
            raise QabotError(
                f"embedding model {settings.models.embedding!r} is not on this machine: run "
                "`qabot models pull` on a connected machine or set models.embedding to a local folder",
                exit_code=2,
            )
        self._index: IndexData | None = None
        self._pipeline: Pipeline | None = None
        self._reader: Any = None
        self._onnx_embedder: OnnxEmbedder | None = None
        self._tokenizer: Any = None
        self._reader_checked = False
        self.reader_notice: str | None = None
        self._notice_given = False
        self._lock = threading.RLock()
        if settings.models.threads:
            import torch

            torch.set_num_threads(settings.models.threads)

    # ----------------------------------------------------------------- models
    def _embedder_kwargs(self) -> dict[str, Any]:
        return {"model": str(self.embedding_model.path), "progress_bar": False, "normalize_embeddings": True}

    @property
    def _quantized(self) -> bool:
        return self.settings.models.embedding_backend == "onnx" and self.settings.models.quantize

    @property
    def embedding_id(self) -> str:
        """The embedding model as the index records it: int8 vectors differ from float ones."""
        return f"{self.settings.models.embedding} [int8]" if self._quantized else self.settings.models.embedding

    @property
    def _onnx(self) -> OnnxEmbedder:
        if self._onnx_embedder is None:
            self._onnx_embedder = OnnxEmbedder(
                self.embedding_model.path,  # type: ignore[arg-type]
                self.settings.models.onnx_dir,
                threads=self.settings.models.threads,
                quantize=self._quantized,
            )
        return self._onnx_embedder

    def _text_embedder(self) -> Any:
        if self.settings.models.embedding_backend == "onnx":
            return OnnxTextEmbedder(self._onnx)
        from haystack_integrations.components.embedders.sentence_transformers import (
            SentenceTransformersTextEmbedder,
        )

        _quiet_transformers()
        embedder = SentenceTransformersTextEmbedder(**self._embedder_kwargs())
        embedder.warm_up()
        return embedder

    def _document_embedder(self) -> Any:
        """Embeds sentence Documents while indexing."""
        batch_size = self.settings.index.batch_size
        if self.settings.models.embedding_backend == "onnx":
            return OnnxDocumentEmbedder(self._onnx, batch_size=batch_size)
        from haystack_integrations.components.embedders.sentence_transformers import (
            SentenceTransformersDocumentEmbedder,
        )

        _quiet_transformers()
        embedder = SentenceTransformersDocumentEmbedder(**self._embedder_kwargs(), batch_size=batch_size)
        embedder.warm_up()
        return embedder

    def _load_reader(self) -> Any:
        """The extractive reader, or None with `reader_notice` saying why and how to get it."""
        if self._reader_checked:
            return self._reader
        self._reader_checked = True
        name = self.settings.models.reader
        how = (
            "to get the extractive model, run `qabot models pull` on a connected machine "
            "or set models.reader to a local model folder"
        )
        resolved = resolve_model(name, self.settings.models.cache_dir)
        if not resolved.available:
            self.reader_notice = (
                f"Reader model {name} is not available offline, so answers are the best-matching sentences; {how}."
            )
            return None
        try:
            from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

            _quiet_transformers()

            reader = TransformersExtractiveReader(model=str(resolved.path), no_answer=True)
            reader.warm_up()
        except Exception as exc:  # noqa: BLE001 - any load failure degrades to sentence answers
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.reader_notice = (
                f"Reader model {name} could not be loaded ({reason}), so answers are the best-matching "
                f"sentences; {how}."
            )
            return None
        self._reader = reader
        return reader

    # ----------------------------------------------------------------- index
    @property
    def index(self) -> IndexData:
        with self._lock:
            if self._index is None:
                if not self.index_dir.is_dir():
                    raise IndexMissingError(
                        f"index folder {self.index_dir} does not exist: build it with `qabot index PATH...`",
                        exit_code=2,
                    )
                if not index_exists(self.index_dir):
                    raise IndexMissingError(
                        f"no index in {self.index_dir}: build it with `qabot index PATH...`", exit_code=2
                    )
                self._index = load_index(self.index_dir, self.embedding_id)
            return self._index

    def is_empty(self) -> bool:
        try:
            return len(self.index) == 0
        except IndexMissingError:
            return True

    def index_paths(
        self, paths: Sequence[Path], rebuild: bool = False, progress: Progress = _no_progress
    ) -> IndexReport:
        """Index the article files under `paths`; unchanged files are kept, changed ones replaced."""
        files = list(iter_article_files([Path(p) for p in paths]))
        loader = ArticleLoader(max_file_mb=self.settings.index.max_file_mb)

        def articles() -> Iterable[Document | SkippedFile]:
            for number, path in enumerate(files, 1):
                progress("reading", number, len(files))
                yield loader.load(path)

        return self._index_articles(articles(), rebuild, progress)

    def index_documents(
        self, documents: Sequence[Document], rebuild: bool = False, progress: Progress = _no_progress
    ) -> IndexReport:
        """Index ready-made article Documents (meta: title, source); used for question-set corpora."""
        articles = [
            document_for(
                d.content or "",
                title=d.meta.get("title", ""),
                source=d.meta.get("source") or d.id,
                file_hash=d.meta.get("file_hash"),
            )
            for d in documents
        ]
        return self._index_articles(articles, rebuild, progress)

    def _index_articles(
        self, articles: Iterable[Document | SkippedFile], rebuild: bool, progress: Progress
    ) -> IndexReport:
        started = time.perf_counter()
        self.index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.index_dir / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise QabotError(
                f"another qabot is indexing into {self.index_dir}: wait for it to finish, then try again",
                exit_code=3,
            ) from exc
        try:
            report = self._index_locked(articles, rebuild, progress)
        finally:
            lock.release()
        report.seconds = time.perf_counter() - started
        return report

    def _index_locked(
        self, articles: Iterable[Document | SkippedFile], rebuild: bool, progress: Progress
    ) -> IndexReport:
        report = IndexReport()
        old = (
            None
            if rebuild or not index_exists(self.index_dir)
            else load_index(self.index_dir, self.embedding_id, verify=False)
        )
        splitter = SentencePassageSplitter(
            passage_words=self.settings.index.passage_words,
            overlap_sentences=self.settings.index.overlap_sentences,
            max_passages=self.settings.index.max_passages_per_file,
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
            if source in replaced:  # the same source twice in one run: the last one wins
                new_passages = [p for p in new_passages if p.meta["source"] != source]
            replaced.add(source)
            new_passages.extend(passages)
            sources[source] = {
                "file_hash": file_hash,
                "title": article.meta.get("title", ""),
                "passages": len(passages),
            }
            report.files_indexed += 1
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
        with self._lock:
            self._index = None
            self._pipeline = None
        return report

    def _embed(self, embedder: Any, documents: list[Document], stage: str, progress: Progress) -> np.ndarray:
        dimension = self._dimension()
        vectors = np.zeros((len(documents), dimension), dtype=np.float32)
        step = self.settings.index.batch_size * 4
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
        import json

        config = json.loads((self.embedding_model.path / "config.json").read_text())  # type: ignore[operator]
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
            )
            for p in new_passages
        ]
        sentence_docs = [
            Document(content=(p.content or "")[start:end])
            for p in new_passages
            for start, end in p.meta["sentence_spans"]
        ]
        new_sentence_vectors = self._embed(self._document_embedder(), sentence_docs, "embedding sentences", progress)
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

    # ----------------------------------------------------------------- asking
    def _build_pipeline(self) -> Pipeline:
        index = self.index
        retrieval, answers = self.settings.retrieval, self.settings.answer
        embedder = self._text_embedder()
        bm25 = BM25PassageRetriever(index, top_k=retrieval.candidates)
        pipeline = Pipeline()
        pipeline.add_component("followup", FollowUpContextualizer())
        pipeline.add_component("embedder", embedder)
        pipeline.add_component("bm25", bm25)
        pipeline.add_component("dense", DensePassageRetriever(index, top_k=retrieval.candidates))
        pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=2 * retrieval.top_k))
        pipeline.add_component("ranker", SentenceEvidenceRanker(index, bm25, embedder=embedder, top_k=retrieval.top_k))
        pipeline.connect("followup.search_query", "embedder.text")
        pipeline.connect("followup.search_query", "bm25.query")
        pipeline.connect("followup.question", "ranker.question")
        pipeline.connect("followup.context", "ranker.context")
        pipeline.connect("embedder.embedding", "dense.query_embedding")
        pipeline.connect("embedder.embedding", "ranker.query_embedding")
        pipeline.connect("bm25.documents", "joiner.documents")
        pipeline.connect("dense.documents", "joiner.documents")
        pipeline.connect("joiner.documents", "ranker.documents")
        reader = self._load_reader()
        if reader is not None:
            answerer: Any = ExtractiveAnswerer(
                reader, index, passages=answers.reader_passages, min_score=answers.min_reader_score
            )
        else:
            answerer = SentenceReader(
                index, self._onnx, passages=answers.sentence_passages, min_score=answers.min_sentence_score
            )
        pipeline.add_component("answerer", answerer)
        pipeline.connect("followup.reader_question", "answerer.query")
        if reader is None:
            pipeline.connect("followup.question", "answerer.question")
            pipeline.connect("followup.context", "answerer.context")
            if isinstance(embedder, OnnxTextEmbedder):
                pipeline.connect("embedder.tokens", "answerer.question_tokens")
        pipeline.connect("ranker.documents", "answerer.documents")
        pipeline.warm_up()
        return pipeline

    @property
    def pipeline(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                if len(self.index) == 0:
                    raise IndexMissingError(
                        f"the index in {self.index_dir} is empty: add articles with `qabot index PATH...`",
                        exit_code=2,
                    )
                self._pipeline = self._build_pipeline()
            return self._pipeline

    def warm_up(self) -> None:
        """Load the index and every model now rather than on the first question."""
        _ = self.pipeline

    @property
    def answer_kind(self) -> str:
        """ "extractive" when a reader model is loaded, else "sentence"."""
        self.warm_up()
        return "extractive" if self._reader is not None else "sentence"

    def _truncate(self, question: str) -> tuple[str, list[str]]:
        """Cut a question to `answer.max_question_tokens` tokens of the embedding model's tokenizer."""
        limit = self.settings.answer.max_question_tokens
        if len(question) <= limit:  # a token covers at least one character
            return question, []
        offsets = self._question_tokenizer().encode(question[: limit * 40], add_special_tokens=False).offsets
        if len(offsets) <= limit:
            return question, []
        cut = question[: offsets[limit - 1][1]].rstrip()
        return cut, [f"Your question was cut to its first {limit} tokens ({len(cut)} characters)."]

    def _question_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(self.embedding_model.path / "tokenizer.json"))  # type: ignore[operator]
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
        return self._tokenizer

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """Answer `question`; `history` (earlier turns, oldest first) lets follow-ups be understood."""
        question = clean_question(question)
        if not question:
            raise InputError('empty question: type a question, e.g. qabot ask "Who declared the talks dead?"')
        pipeline = self.pipeline
        question, notices = self._truncate(question)
        with self._lock:
            if self.reader_notice and not self._notice_given:
                notices.append(self.reader_notice)
                self._notice_given = True
            result = pipeline.run(
                {"followup": {"question": question, "history": [_cleaned(turn) for turn in history]}},
                include_outputs_from={"ranker", "followup"},
            )
        documents = result["ranker"]["documents"]
        extracted = result["answerer"]["answer"]
        search_query = result["followup"]["search_query"]
        return self._to_answer(question, extracted, documents, search_query, tuple(notices))

    def _to_answer(
        self,
        question: str,
        extracted: Any,
        documents: list[Document],
        search_query: str,
        notices: tuple[str, ...],
    ) -> Answer:
        passages = tuple(
            Passage(
                id=doc.id,
                text=doc.content or "",
                title=doc.meta.get("title", ""),
                source=doc.meta.get("source", ""),
                score=float(doc.score or 0.0),
            )
            for doc in documents
        )
        if extracted is None:
            return Answer(question, "", 0.0, "none", passages=passages, search_query=search_query, notices=notices)
        evidence = extracted.meta["evidence"]
        start = extracted.document_offset.start - extracted.meta["evidence_offset"]
        end = start + len(extracted.data)
        if not (start >= 0 and evidence[start:end] == extracted.data):
            start, end = -1, -1
        return Answer(
            question=question,
            text=extracted.data,
            score=round(float(extracted.score), 4),
            kind=extracted.meta["kind"],
            evidence=evidence,
            title=extracted.document.meta.get("title", ""),
            source=extracted.document.meta.get("source", ""),
            passages=passages,
            answer_start=start,
            answer_end=end,
            search_query=search_query,
            notices=notices,
        )

    def examples(self, n: int = 3) -> list[str]:
        """Example questions about the indexed articles, for greetings and help texts."""
        titles = list(dict.fromkeys(p.title for p in self.index.passages if p.title))[:n]
        return [f"What does “{title}” report?" for title in titles]
