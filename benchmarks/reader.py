"""Benchmark: qabot's extractive answers beside a plain Haystack extractive pipeline, in one run.

    .venv/bin/python benchmarks/reader.py [--questions ../shared/eval/xquad-en-dev.json] [--reader qabot-reader]

Both answer every question of the XQuAD-en dev half (a dev set: settings were chosen on it) from
the same passages (qabot's index of the 120 paragraphs) with the same reader model:
- qabot: `QAEngine.ask` (hybrid retrieval, sentence re-ranking, the reader on the windows around
  the best sentences, ONNX Runtime);
- plain Haystack: InMemoryBM25Retriever and InMemoryEmbeddingRetriever (SentenceTransformers
  embedder) fused by DocumentJoiner (reciprocal rank fusion, top 5), then
  TransformersExtractiveReader reading those 5 passages.
Reported: warm p50/p95 latency (first 3 questions excluded), EM and F1 (SQuAD normalisation;
an abstention scores 0), the share answered, and cold `qabot ask` seconds; and, in the same run,
qabot's other settings: the int8 reader (`models.reader_quantize`), one window
(`answer.reader_windows = 1`), and two windows for every question (`answer.reader_window_margin
= 1`, where the defaults read a second window only when its sentence comes close to the best);
qabot's settings take turns question by question, so that the machine's changes of speed fall on
all of them alike (the baseline, which runs torch, is measured after them); and the machine's
speed before and after (float32 matrix products, GFLOP/s), as it swings by the hour. Written to
benchmarks/results/reader.json; the question set is used from where it lies.
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

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run import cold_start, machine_gflops, percentile, squad_documents  # noqa: E402
from bot.evaluation.metrics import exact_match, f1_score  # noqa: E402
from retrieval.engine import QAEngine  # noqa: E402
from retrieval.models.resolve import DEFAULT_READER_MODEL, reader_calibration, resolve_model  # noqa: E402
from retrieval.settings import load_settings  # noqa: E402

DEFAULT_QUESTIONS = ROOT.parent / "shared" / "eval" / "xquad-en-dev.json"
# qabot's settings that trade accuracy and speed, measured beside the defaults
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "two_windows_always": {"answer": {"reader_window_margin": 1.0}},
    "int8_reader": {"models": {"reader_quantize": True}},
    "one_window": {"answer": {"reader_windows": 1}},
    "int8_reader_one_window": {"models": {"reader_quantize": True}, "answer": {"reader_windows": 1}},
}


def squad_questions(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [
        (qa["question"], tuple(a["text"] for a in qa["answers"]))
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def measure(answerers: dict[str, Any], questions: list[tuple[str, tuple[str, ...]]]) -> dict[str, dict[str, float]]:
    """Run each `answer(question) -> text or ""` of `answerers` over every question; for each, its
    latency, EM, F1 and share answered. They take turns question by question (each question
    asked of all of them, in an order that rotates), so that this machine's changes of speed
    over the run fall on all of them alike."""
    names = list(answerers)
    for question, _ in questions[:3]:
        for name in names:
            answerers[name](question)  # warm-up, not measured
    latencies: dict[str, list[float]] = {name: [] for name in names}
    em: dict[str, list[float]] = {name: [] for name in names}
    f1: dict[str, list[float]] = {name: [] for name in names}
    answered = dict.fromkeys(names, 0)
    for number, (question, golds) in enumerate(questions):
        turn = number % len(names)
        for name in names[turn:] + names[:turn]:
            started = time.perf_counter()
            text = answerers[name](question)
            latencies[name].append((time.perf_counter() - started) * 1000)
            answered[name] += bool(text)
            em[name].append(exact_match(text, golds) if text else 0.0)
            f1[name].append(f1_score(text, golds) if text else 0.0)
    return {
        name: {
            "questions": len(questions),
            "p50_ms": round(percentile(latencies[name], 50), 2),
            "p95_ms": round(percentile(latencies[name], 95), 2),
            "em": round(statistics.fmean(em[name]), 4),
            "f1": round(statistics.fmean(f1[name]), 4),
            "answered": round(answered[name] / len(questions), 4),
        }
        for name in names
    }


def plain_haystack(engine: QAEngine, reader_path: Path, factor: float, threshold: float):
    """The plain Haystack extractive pipeline over qabot's passages; returns ask(question) -> text."""
    from haystack import Document, Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )
    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    embedding = str(engine.embedding_model.path)
    documents = [Document(content=p.content, meta={"title": p.title}) for p in engine.index.passages]
    embedder = SentenceTransformersDocumentEmbedder(model=embedding, progress_bar=False)
    embedder.warm_up()
    store = InMemoryDocumentStore()
    store.write_documents(embedder.run(documents)["documents"])
    pipeline = Pipeline()
    pipeline.add_component("embedder", SentenceTransformersTextEmbedder(model=embedding, progress_bar=False))
    pipeline.add_component("bm25", InMemoryBM25Retriever(store, top_k=20))
    pipeline.add_component("dense", InMemoryEmbeddingRetriever(store, top_k=20))
    pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=5))
    pipeline.add_component("reader", TransformersExtractiveReader(model=str(reader_path), calibration_factor=factor))
    pipeline.connect("embedder.embedding", "dense.query_embedding")
    pipeline.connect("bm25.documents", "joiner.documents")
    pipeline.connect("dense.documents", "joiner.documents")
    pipeline.connect("joiner.documents", "reader.documents")
    pipeline.warm_up()

    def ask(question: str) -> str:
        result = pipeline.run(
            {"embedder": {"text": question}, "bm25": {"query": question}, "reader": {"query": question, "top_k": 1}}
        )
        answers = result["reader"]["answers"]
        spans = [a for a in answers if a.data]
        none = max((a.score for a in answers if not a.data), default=0.0)
        return spans[0].data if spans and spans[0].score >= max(threshold, none) else ""

    return ask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--reader", default=DEFAULT_READER_MODEL)
    parser.add_argument("--limit", type=int, help="only the first N questions (a quick look)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reader.json")
    args = parser.parse_args()
    questions = squad_questions(args.questions)[: args.limit]
    reader_path = resolve_model(args.reader).path
    if reader_path is None:
        raise SystemExit(f"reader {args.reader} is not on this machine")
    speed_before = machine_gflops()
    with tempfile.TemporaryDirectory(prefix="qabot-reader-bench-") as folder:
        settings = load_settings(index={"dir": Path(folder) / "index"}, models={"reader": args.reader})
        documents, _ = squad_documents(args.questions)
        QAEngine(settings).index_documents(documents)
        engines = {"defaults": QAEngine(settings)}
        for name, overrides in VARIANTS.items():
            engines[name] = QAEngine(
                load_settings(
                    index={"dir": Path(folder) / "index"},
                    models={"reader": args.reader, **overrides.get("models", {})},
                    answer=overrides.get("answer", {}),
                )
            )
        for engine in engines.values():
            engine.warm_up()
        measured = measure({name: (lambda q, e=e: e.ask(q).text) for name, e in engines.items()}, questions)
        ours, engine = measured.pop("defaults"), engines["defaults"]
        variants = measured
        calibration = reader_calibration(reader_path)
        factor = settings.answer.reader_calibration_factor or calibration.get("calibration_factor", 0.1)
        ask = plain_haystack(engine, reader_path, factor, engine.rules.min_score)
        baseline = measure({"plain_haystack": ask}, questions)["plain_haystack"]
        cold = cold_start(settings.index_dir, args.reader, repeats=3)
    results = {
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "questions_file": args.questions.name,
        "reader": args.reader,
        "note": "XQuAD-en dev half (settings were chosen on it); warm latencies, first 3 questions excluded",
        "machine_gflops_before_after": [speed_before, machine_gflops()],
        "qabot": ours,
        "plain_haystack": baseline,
        "p50_ratio": round(ours["p50_ms"] / baseline["p50_ms"], 3),
        "cold_ask_s": cold,
        "qabot_other_settings": variants,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
