"""Benchmark: `qabot eval` on XQuAD-en dev, beside plain Haystack BM25 retrieval on the same paragraphs.

    .venv/bin/python benchmarks/eval_xquad.py [--questions ../shared/eval/xquad-en-dev.json] [--report DIR]

The question set is used from where it lies (it is CC BY-SA and not part of this repository); the
results file holds aggregate numbers and failing question ids only, no text from the set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # before Haystack is imported

from haystack import Document  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402
from rich.console import Console  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.evaluation.command import eval_command  # noqa: E402
from bot.evaluation.metrics import retrieval_scores  # noqa: E402
from bot.evaluation.questionsets import QuestionSet, load_question_set  # noqa: E402
from retrieval.settings import load_settings  # noqa: E402

DEFAULT_QUESTIONS = ROOT.parent / "shared" / "eval" / "xquad-en-dev.json"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "eval_xquad.json"
RETRIEVAL_METRICS = ("recall_at_1", "recall_at_5", "mrr")


def bm25_baseline(question_set: QuestionSet, top_k: int = 5) -> dict[str, Any]:
    """Plain Haystack BM25 (InMemoryDocumentStore + InMemoryBM25Retriever) over whole paragraphs."""
    store = InMemoryDocumentStore()
    store.write_documents([Document(content=d.content, meta=dict(d.meta)) for d in question_set.documents])
    retriever = InMemoryBM25Retriever(document_store=store, top_k=top_k)
    judged = [q for q in question_set.questions if q.answerable and q.gold_source]
    started = time.perf_counter()
    retrieved = [[d.meta["source"] for d in retriever.run(query=q.question)["documents"]] for q in judged]
    seconds = time.perf_counter() - started
    scores = retrieval_scores([q.gold_source or "" for q in judged], retrieved)
    return {
        "n_questions": len(judged),
        **{metric: sum(values) / len(values) for metric, values in scores.items()},
        "latency_ms_mean": 1000 * seconds / len(judged),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="aggregate results (JSON)")
    parser.add_argument("--json-out", type=Path, help="also write the full per-question results here")
    parser.add_argument("--report", type=Path, help="also write the Markdown report with plots here")
    args = parser.parse_args(argv)
    console = Console()

    question_set = load_question_set(args.questions)
    with tempfile.TemporaryDirectory(prefix="qabot-xquad-") as folder:
        settings = load_settings(index={"dir": Path(folder) / "index"}, data={"dir": Path(folder) / "data"})
        started = time.perf_counter()
        summary = eval_command(settings, args.questions, [], args.json_out, args.report, console)
        seconds = time.perf_counter() - started
    baseline = bm25_baseline(question_set, top_k=settings.retrieval.top_k)

    failures: dict[str, list[str]] = {}
    for record in summary["questions"]:
        if record["failure"]:
            failures.setdefault(record["failure"], []).append(record["id"])
    results = {
        "questions_file": args.questions.name,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "settings": {
            "embedding": settings.models.embedding,
            "reader": settings.models.reader,
            "top_k": settings.retrieval.top_k,
            "candidates": settings.retrieval.candidates,
            "passage_words": settings.index.passage_words,
        },
        "qabot": {**{k: v for k, v in summary.items() if k != "questions"}, "questions_file": args.questions.name},
        "qabot_seconds_total": round(seconds, 1),
        "bm25_baseline": baseline,
        "failures": {reason: {"count": len(ids), "ids": ids} for reason, ids in failures.items()},
        "retrieval_misses": {
            metric: [record["id"] for record in summary["questions"] if record[metric] == 0]
            for metric in ("recall_at_1", "recall_at_5")
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    console.print(f"\n{'':14}{'qabot':>8}{'BM25':>8}")
    for metric in RETRIEVAL_METRICS:
        console.print(f"{metric:14}{summary[metric]:8.3f}{baseline[metric]:8.3f}")
    console.print(f"{'evidence_hit':14}{summary['evidence_hit']:8.3f}{'–':>8}")
    for reason, ids in failures.items():
        console.print(f"{len(ids):4} failed: {reason}")
    console.print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
