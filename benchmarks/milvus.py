"""The embedded index against Milvus Lite, side by side in one run: index rate, warm latency, recall.

    .venv/bin/python benchmarks/milvus.py [--corpus ../shared/corpora/bbc-news] [--sizes 10000,100000]
        [--questions 200] [--xquad ../shared/eval/xquad-en-dev.json]

Both backends get the same passages and the same vectors, through the same `PassageStore.write`
the indexer calls, so the index rate is the store's own (the sentences are embedded once, before
any timing; the embedding rate is reported beside it). The corpus is the BBC News set (2,225
articles, read from where it lies, never copied): its passages, repeated under other source names
up to the larger sizes. Latency is `QAEngine.ask` with sentence answers (no reader), warm, over
XQuAD questions; recall@1 and evidence_hit are `qabot eval` on the XQuAD-en dev half, its
paragraphs indexed into each backend. Milvus Lite runs in this process (store.uri a local .db).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from bot.evaluation.questionsets import load_question_set  # noqa: E402
from bot.evaluation.report import summarize  # noqa: E402
from bot.evaluation.runner import run_questions  # noqa: E402
from retrieval.engine import QAEngine  # noqa: E402
from retrieval.ingest.articles import ArticleLoader, iter_article_files  # noqa: E402
from retrieval.ingest.indexing import passage_vectors  # noqa: E402
from retrieval.ingest.splitter import SentencePassageSplitter, passage_id  # noqa: E402
from retrieval.settings import load_settings  # noqa: E402
from retrieval.stores.protocol import PassageRecord, StoreUpdate  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpora" / "bbc-news"
DEFAULT_XQUAD = ROOT.parent / "shared" / "eval" / "xquad-en-dev.json"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "milvus.json"
NO_READER = "qabot-bench/no-reader"
BACKENDS = ("embedded", "milvus")
WRITE_BATCH = 5000


def settings_for(backend: str, folder: Path) -> Any:
    return load_settings(
        data={"dir": folder / backend},
        store={"backend": backend, "uri": str(folder / backend / "milvus.db")},
        models={"reader": NO_READER},
    )


def bbc_passages(corpus: Path) -> list[Any]:
    loader = ArticleLoader()
    articles = [loader.load(path) for path in iter_article_files([corpus])]
    articles = [a for a in articles if not hasattr(a, "reason")]
    return SentencePassageSplitter().run(documents=articles)["documents"]


def embedded_sentences(engine: QAEngine, passages: list[Any]) -> tuple[np.ndarray, float]:
    """Every passage's sentence vectors, in order, and the embedding rate (sentences/s)."""
    sentences = [(p.content or "")[a:b] for p in passages for a, b in p.meta["sentence_spans"]]
    unique = sorted(set(sentences))
    started = time.perf_counter()
    vectors = np.asarray(engine._onnx.embed(unique, 64), dtype=np.float32)
    rate = len(unique) / (time.perf_counter() - started)
    position = {text: i for i, text in enumerate(unique)}
    return vectors[[position[s] for s in sentences]], rate


def records(passages: list[Any], size: int) -> tuple[list[PassageRecord], list[int]]:
    """`size` passages: the corpus's, then copies under other source names; and each one's original."""
    out, origin = [], []
    for n in range(size):
        p = passages[n % len(passages)]
        copy = n // len(passages)
        source = p.meta["source"] if copy == 0 else f"{p.meta['source']}#copy{copy}"
        out.append(
            PassageRecord(
                passage_id(source, p.content or ""),
                p.content or "",
                p.meta.get("title", ""),
                source,
                p.meta["sentence_spans"],
            )
        )
        origin.append(n % len(passages))
    return out, origin


def write_store(engine: QAEngine, recs: list[PassageRecord], origin: list[int], sentence_vectors, starts) -> float:
    """Write the passages through the store in batches; passages per second."""
    store = engine.store
    sources: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    with store.writer_lock():
        for first in range(0, len(recs), WRITE_BATCH):
            batch = recs[first : first + WRITE_BATCH]
            vectors = np.vstack(
                [sentence_vectors[starts[o] : starts[o + 1]] for o in origin[first : first + WRITE_BATCH]]
            )
            counts = [len(r.sentence_spans) for r in batch]
            for r in batch:
                entry = sources.setdefault(r.source, {"file_hash": "bench", "title": r.title, "passages": 0})
                entry["passages"] += 1
            store.write(
                StoreUpdate(
                    passages=batch,
                    passage_vectors=passage_vectors(vectors, counts),
                    sentence_vectors=vectors,
                    replaced=set(),
                    sources=dict(sources),
                    rebuild=first == 0,
                ),
                lambda *_: None,
            )
    return len(recs) / (time.perf_counter() - started)


def latency(engine: QAEngine, questions: list[str]) -> dict[str, float]:
    engine.warm_up()
    for question in questions[:3]:
        engine.ask(question)
    times = []
    for question in questions[3:]:
        started = time.perf_counter()
        engine.ask(question)
        times.append((time.perf_counter() - started) * 1000)
    ordered = sorted(times)
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
    }


def quality(backend: str, folder: Path, xquad: Path) -> dict[str, Any]:
    settings = settings_for(backend, folder / "xquad")
    question_set = load_question_set(xquad)
    engine = QAEngine(settings)
    engine.index_documents(list(question_set.documents))
    engine.warm_up()
    summary = summarize(run_questions(engine, question_set, Console(quiet=True)), xquad)
    keys = ("recall_at_1", "recall_at_5", "evidence_hit", "latency_ms_p50")
    return {key: summary.get(key) for key in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--xquad", type=Path, default=DEFAULT_XQUAD)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: dict[str, Any] = {"cores": os.cpu_count(), "machine": platform.machine(), "sizes": {}}
    xquad = load_question_set(args.xquad)
    questions = [q.question for q in xquad.questions][: args.questions + 3]
    with tempfile.TemporaryDirectory(prefix="qabot-milvus-bench-") as tmp:
        folder = Path(tmp)
        results["xquad"] = {backend: quality(backend, folder, args.xquad) for backend in BACKENDS}
        print(json.dumps(results["xquad"]), flush=True)
        base = QAEngine(settings_for("embedded", folder / "embed"))
        passages = bbc_passages(args.corpus)
        sentence_vectors, rate = embedded_sentences(base, passages)
        starts = np.cumsum([0, *[len(p.meta["sentence_spans"]) for p in passages]])
        results["corpus_passages"] = len(passages)
        results["embedding_sentences_per_s"] = round(rate, 1)
        for size in sizes:
            recs, origin = records(passages, size)
            row: dict[str, Any] = {}
            for backend in BACKENDS:
                engine = QAEngine(settings_for(backend, folder / f"{size}"))
                written = write_store(engine, recs, origin, sentence_vectors, starts)
                engine = QAEngine(settings_for(backend, folder / f"{size}"))  # a fresh start, as a restart
                row[backend] = {"index_passages_per_s": round(written, 1), **latency(engine, questions)}
                print(size, backend, json.dumps(row[backend]), flush=True)
            results["sizes"][str(size)] = row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
