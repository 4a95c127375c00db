"""Core speed figures: index build rate, warm `ask` latency (seed index, XQuAD paragraphs), cold start.

    .venv/bin/python benchmarks/run.py [--xquad ../shared/eval/xquad-en-dev.json] [--repeats 3]

Warm-up questions are excluded; latencies are medians over repeated runs. The XQuAD file is a
public SQuAD-format set kept outside the repository (see its README); without it that part is
skipped. Results are printed and written to benchmarks/results/core.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval.engine import QAEngine  # noqa: E402
from retrieval.ingest.articles import document_for  # noqa: E402
from retrieval.models.resolve import DEFAULT_READER_MODEL  # noqa: E402
from retrieval.settings import load_settings  # noqa: E402

SEED_QUESTIONS = [
    "Who declared the talks dead?",
    "Who is the US Secretary of State?",
    "How many US troops have been killed this year?",
    "Who overthrew the Taliban government in 2001?",
    "What did Mark Esper say?",
    "When did the Afghan government spokesman ask for a ceasefire?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def machine_gflops(size: int = 384, runs: int = 200) -> float:
    """This machine's speed now, as float32 matrix-product GFLOP/s on all cores (the median of
    `runs` products of the reader's width): its speed swings by the hour, so a benchmark records
    this beside its latencies."""
    import numpy as np

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - started)
    return round(2 * size**3 / statistics.median(times) / 1e9, 1)


def timed_questions(engine: QAEngine, questions: list[str], repeats: int, cache: bool = True) -> dict[str, float]:
    """Latency of `ask`; with `cache` off, the sentence reader reads every passage afresh."""
    answerer = engine.pipeline.get_component("answerer")
    reader = getattr(answerer, "sentences", answerer)  # the extractive answerer reads with a sentence reader
    reader.cache = 512 if cache else 0
    reader._readings.clear()
    for question in questions[:3]:  # warm-up, not measured
        engine.ask(question)
    runs = []
    for _ in range(repeats):
        latencies = []
        for question in questions:
            started = time.perf_counter()
            engine.ask(question)
            latencies.append((time.perf_counter() - started) * 1000)
        runs.append((percentile(latencies, 50), percentile(latencies, 95)))
    return {
        "questions": len(questions),
        "p50_ms": round(statistics.median(r[0] for r in runs), 2),
        "p95_ms": round(statistics.median(r[1] for r in runs), 2),
    }


def squad_documents(path: Path) -> tuple[list, list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    documents, questions = [], []
    for article in data["data"]:
        for number, paragraph in enumerate(article["paragraphs"]):
            source = f"{article['title']}#{number}"
            documents.append(document_for(paragraph["context"], title=article["title"], source=source))
            questions.extend(qa["question"] for qa in paragraph["qas"])
    return documents, questions


def build(settings_dir: Path, reader: str, index_docs=None, paths=None) -> tuple[QAEngine, dict[str, float]]:
    settings = load_settings(index={"dir": settings_dir}, models={"reader": reader})
    engine = QAEngine(settings)
    engine.index_paths([ROOT / "seeds"])  # warm the models and the ONNX export, not measured
    engine = QAEngine(settings)
    started = time.perf_counter()
    report = engine.index_documents(index_docs, rebuild=True) if index_docs else engine.index_paths(paths, rebuild=True)
    seconds = time.perf_counter() - started
    return QAEngine(settings), {
        "passages": report.passages_total,
        "seconds": round(seconds, 2),
        "passages_per_s": round(report.passages_total / seconds, 1),
    }


def cold_start(index_dir: Path, reader: str, repeats: int) -> float:
    qabot = Path(sys.executable).parent / "qabot"
    env = {**os.environ, "QABOT_MODELS_READER": reader}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(
            [str(qabot), "ask", "--index", str(index_dir), "Who declared the talks dead?"],
            env=env,
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared" / "eval" / "xquad-en-dev.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--reader", default=DEFAULT_READER_MODEL, help="reader model; a name on no disk measures sentence answers"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "core.json")
    args = parser.parse_args()
    results: dict[str, object] = {
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "reader": args.reader,
        "note": "warm-up questions excluded; medians over repeats; *_ask: the reading cache off, "
        "every question reads its passages; *_ask_cached: the default cache, which repeats serve",
    }
    with tempfile.TemporaryDirectory() as folder:
        seed_engine, results["seed_index"] = build(Path(folder) / "seed", args.reader, paths=[ROOT / "seeds"])
        results["seed_ask"] = timed_questions(seed_engine, SEED_QUESTIONS, args.repeats * 5, cache=False)
        results["seed_ask_cached"] = timed_questions(seed_engine, SEED_QUESTIONS, args.repeats * 5)
        results["cold_ask_s"] = cold_start(Path(folder) / "seed", args.reader, args.repeats)
        if args.xquad.is_file():
            documents, questions = squad_documents(args.xquad)
            xquad_engine, results["xquad_index"] = build(Path(folder) / "xquad", args.reader, index_docs=documents)
            results["xquad_ask"] = timed_questions(xquad_engine, questions, args.repeats, cache=False)
            results["xquad_ask_cached"] = timed_questions(xquad_engine, questions, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
