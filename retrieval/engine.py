"""The one entry point of the engine: index articles, then `QAEngine.ask(question, history) -> Answer`.

Every front end (CLI chat, Telegram, evaluation) calls this and nothing below it. The engine loads
the index and the models once; writing the index is `retrieval/ingest/indexing.py`'s job, answering
`retrieval/answering/pipeline.py`'s.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from haystack import Document, Pipeline
from haystack.core.errors import PipelineRuntimeError

from retrieval.answering.answer import Answer, Turn
from retrieval.answering.conversation import answer_in_story, pipeline_inputs, recent, reply_to
from retrieval.answering.pipeline import (
    QuestionTruncator,
    answer_from,
    build_question_pipeline,
    clean_question,
    cleaned_turn,
)
from retrieval.answering.rules import DEFAULT_SURE_CONFIDENCE, DEFAULT_SURE_COVERAGE, AnswerRules
from retrieval.answering.smalltalk import strip_opening
from retrieval.answering.span_reader import OnnxExtractiveReader
from retrieval.errors import ConfigError, IndexMissingError, InputError, QabotError
from retrieval.ingest.feeds import WebIndexer
from retrieval.ingest.indexing import (
    IndexReport,
    IndexWriter,
    NothingToIndexError,
    Progress,
    articles_from_documents,
    articles_in_files,
    describe_paths,
    no_progress,
)
from retrieval.models.embedders import OnnxDocumentEmbedder, OnnxEmbedder, OnnxTextEmbedder
from retrieval.models.resolve import (
    ResolvedModel,
    is_question_answering_model,
    reader_calibration,
    resolve_model,
)
from retrieval.settings import Settings
from retrieval.stores.configured import open_store
from retrieval.stores.embedded.index_folder import IndexData
from retrieval.stores.protocol import PassageStore

logger = logging.getLogger(__name__)


def _quiet_transformers() -> None:
    """Model loading draws its own progress bars and warnings; front ends show their own."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


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
        self._store: PassageStore | None = None
        self._pipeline: Pipeline | None = None
        self._reader: Any = None
        self._onnx_embedder: OnnxEmbedder | None = None
        self._reader_checked = False
        self.reader_notice: str | None = None
        self.rules = AnswerRules()  # how the answerer decides: from the reader's calibration and settings
        self._lock = threading.RLock()
        self._truncator = QuestionTruncator(
            self.embedding_model.path / "tokenizer.json",  # type: ignore[operator]
            settings.answer.max_question_tokens,
        )
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
        """The extractive reader, or None with `reader_notice` saying why (answers are then sentences).

        A reader that is configured but is no question-answering model is a setting to fix: an error.
        """
        if self._reader_checked:
            return self._reader
        self._reader_checked = True
        models, name = self.settings.models, self.settings.models.reader
        resolved = resolve_model(name, models.cache_dir)
        if resolved.path is None:
            return self._without_reader(f"Reader model {name} is not available offline")
        if not is_question_answering_model(resolved.path):
            raise ConfigError(
                f"models.reader = {name!r} is not an extractive question-answering model ({resolved.path}): "
                "set models.reader to one, e.g. qabot-reader or deepset/roberta-base-squad2",
                exit_code=2,
            )
        calibration = reader_calibration(resolved.path)
        factor = self.settings.answer.reader_calibration_factor or calibration.get("calibration_factor", 0.1)
        self.rules = AnswerRules.of(calibration, self.settings.answer)
        if not self.rules.bands_given:
            logger.warning(
                "Reader model %s has no confidence bands in its calibration.json (sure_model or sure_confidence): "
                "answers are sure at confidence %.2f with %.0f%% of the question's terms in their passage; "
                "run training.calibrate",
                name,
                DEFAULT_SURE_CONFIDENCE,
                DEFAULT_SURE_COVERAGE * 100,
            )
        try:
            if models.reader_backend == "onnx":
                reader: Any = OnnxExtractiveReader(
                    resolved.path,
                    models.onnx_dir,
                    calibration_factor=factor,
                    threads=models.threads,
                    quantize=models.reader_quantize,
                    distinct=True,
                )
            else:
                import torch
                from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

                _quiet_transformers()
                reader = TransformersExtractiveReader(
                    model=str(resolved.path),
                    calibration_factor=factor,
                    no_answer=True,
                    model_kwargs={"dtype": torch.float32},
                )
            reader.warm_up()
        except Exception as exc:  # noqa: BLE001 - any load failure degrades to sentence answers
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return self._without_reader(f"Reader model {name} could not be loaded ({reason})")
        self._reader = reader
        return reader

    def _without_reader(self, why: str) -> None:
        """Answer with sentences; say why once, to the operator (the log and the CLI), never to askers."""
        self.reader_notice = (
            f"{why}, so answers are the best-matching sentences; set models.reader to a local model folder "
            "(the shipped one is qabot-reader), or run `qabot models pull` on a connected machine."
        )
        logger.warning("%s", self.reader_notice)
        return None

    # ----------------------------------------------------------------- index
    @cached_property
    def dimension(self) -> int:
        """The embedding model's vector size, from its config (read once)."""
        config = json.loads((self.embedding_model.path / "config.json").read_text())  # type: ignore[operator]
        return int(config.get("hidden_size") or config.get("dim") or config["d_model"])

    @property
    def store(self) -> PassageStore:
        """Where the passages live: the index folder, or a Milvus collection (`store.backend`)."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings, self.embedding_id, self.dimension)
            return self._store

    @property
    def index(self) -> IndexData:
        """The embedded backend's index, loaded once (tests and benchmarks look inside it)."""
        return self.store.data  # type: ignore[attr-defined,no-any-return]

    def is_empty(self) -> bool:
        try:
            return not self.store.exists() or self.store.count() == 0
        except IndexMissingError:
            return True

    def index_paths(
        self, paths: Sequence[Path], rebuild: bool = False, progress: Progress = no_progress
    ) -> IndexReport:
        """Index the article files under `paths`; unchanged files are kept, changed ones replaced.

        The report's `inputs_failed` names the paths that gave no article (a file skipped, a folder
        of skipped files or none), when others did.
        """
        articles = articles_in_files(paths, self.settings.index.max_file_mb, progress)
        report = self._writer().write(articles, rebuild, progress, origin=describe_paths(paths))
        report.inputs_failed = articles.failed(report)
        return report

    def index_corpus(self, progress: Progress = no_progress) -> IndexReport:
        """Index `index.corpus`, as the chat and the bot do when the index is empty."""
        corpus = list(self.settings.index.corpus)
        fix = "; set index.corpus (QABOT_INDEX_CORPUS) to a folder of articles, or run `qabot index PATH...`"
        try:
            return self.index_paths(corpus, progress=progress)
        except NothingToIndexError as error:
            raise NothingToIndexError(f"index.corpus ({error.origin})", error.skipped, hint=fix) from None
        except InputError as error:
            raise InputError(f"index.corpus: {error}{fix}", exit_code=2) from None

    def index_documents(
        self, documents: Sequence[Document], rebuild: bool = False, progress: Progress = no_progress
    ) -> IndexReport:
        """Index ready-made article Documents (meta: title, source); used for question-set corpora."""
        return self._writer().write(articles_from_documents(documents), rebuild, progress)

    def remove_sources(self, sources: Sequence[str], progress: Progress = no_progress) -> IndexReport:
        """Delete articles (by the source names the index lists) and their passages."""
        return self._writer().remove(sources, progress)

    def _writer(self) -> IndexWriter:
        return IndexWriter(
            self.store,
            self.settings.index,
            self.dimension,
            document_embedder=self._document_embedder,
            on_saved=self._forget_index,
        )

    @cached_property
    def web(self) -> WebIndexer:
        """Article URLs and feeds: `web.index_urls(urls)`, `web.refresh()`, `web.feeds` (the feed list)."""
        return WebIndexer(
            self.settings,
            lambda: self.store.sources(),
            lambda articles, progress, expired: self._writer().write(articles, False, progress, expired=expired),
        )

    def _forget_index(self) -> None:
        """A new index is live: load it, and build the pipeline over it, on the next question."""
        with self._lock:
            self._pipeline = None

    # ----------------------------------------------------------------- asking
    def _build_pipeline(self) -> Pipeline:
        store = self.store
        embedder = self._text_embedder()
        reader = self._load_reader()
        return build_question_pipeline(
            store,
            self.settings,
            embedder,
            reader,
            onnx=lambda: self._onnx,
            rules=self.rules,
        )

    @property
    def pipeline(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                self.store.check()
                if self.store.count() == 0:
                    raise IndexMissingError(
                        f"the index in {self.store.location} is empty: add articles with `qabot index PATH...`",
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

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """Answer `question`; `history` (earlier turns, oldest first; only the last few are read) lets
        follow-ups be understood. Small talk and messages in other languages get a reply of the bot's own."""
        question = clean_question(question)
        if not question:
            raise InputError('empty question: type a question, e.g. qabot ask "Who declared the talks dead?"')
        own = reply_to(question, self._known_word, lambda: next(iter(self._examples(1)), ""))
        if own is not None:
            return own
        pipeline = self.pipeline
        asked, notices = self._truncator.cut(strip_opening(question))
        turns = [cleaned_turn(turn) for turn in recent(history)]

        def run(keep_story: bool) -> tuple[Answer, dict[str, Any]]:
            with self._lock:
                try:
                    result = pipeline.run(
                        pipeline_inputs(asked, turns, keep_story), include_outputs_from={"ranker", "followup"}
                    )
                except PipelineRuntimeError as error:  # Haystack wraps a component's error: pass ours on as is
                    if isinstance(error.__cause__, QabotError):
                        raise error.__cause__ from None
                    raise
            read = result["followup"]
            shown = asked if notices else question
            answer = self._to_answer(
                shown, result["answerer"]["answer"], result["ranker"]["documents"], read["search_query"], tuple(notices)
            )
            return answer, read

        return answer_in_story(run)

    # The Answer from the pipeline's output.
    _to_answer = staticmethod(answer_from)

    def examples(self, n: int = 3) -> list[str]:
        """Example questions about the indexed articles, for greetings and help texts."""
        titles = self.store.titles(n)
        return [f"What does “{title}” report?" for title in titles]

    def _known_word(self, word: str) -> bool:
        """Whether `word` is English or a word of the indexed articles (spelling.py's vocabulary)."""
        return bool(self.pipeline.get_component("followup").speller.known(word))

    def _examples(self, n: int) -> list[str]:
        try:
            return self.examples(n)
        except QabotError:
            return []
