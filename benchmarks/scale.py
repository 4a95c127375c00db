"""qabot against a plain Haystack hybrid pipeline, at growing corpus sizes, in one run.

    .venv/bin/python benchmarks/scale.py [--sizes 1000,10000,100000] [--questions 100]

For each size both systems index the same passages (qabot's sentence passages of a synthetic
corpus from benchmarks/make_corpus.py) with the same embedding model, then answer the same
questions (a seeded sample of the XQuAD questions, whose paragraphs are in every corpus):

- qabot: bm25s + dense matrix product + RRF + sentence re-ranking and the sentence answer,
  int8 ONNX embeddings (its defaults);
- baseline: Haystack's InMemoryDocumentStore with InMemoryBM25Retriever,
  SentenceTransformersTextEmbedder/DocumentEmbedder + InMemoryEmbeddingRetriever and
  DocumentJoiner(reciprocal_rank_fusion), all at their default settings; retrieval only.

Each system and size runs in its own process, so peak RSS is its own. Warm-up questions are
excluded; stage latencies are medians over the questions. Corpora above --embed-limit passages
are not embedded passage by passage (an hour on 2 cores): both systems get passage vectors
that are the mean of their sentences' real vectors, and no build rate is reported for them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.make_corpus import DEFAULT_SQUAD, build_corpus  # noqa: E402
from retrieval.engine import QAEngine  # noqa: E402
from retrieval.settings import load_settings  # noqa: E402

CONCURRENCY = (1, 4, 16)
NO_READER = "qabot-bench/no-reader"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def sample_questions(n: int) -> list[tuple[str, str]]:
    data = json.loads(DEFAULT_SQUAD.read_text(encoding="utf-8"))
    questions = [
        (qa["question"], f"{article['title']}#{number}")
        for article in data["data"]
        for number, paragraph in enumerate(article["paragraphs"])
        for qa in paragraph["qas"]
    ]
    return random.Random(7).sample(questions, min(n, len(questions)))


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function()
    return result, (time.perf_counter() - started) * 1000


def throughput(ask: Callable[[str], Any], questions: list[str]) -> dict[str, float]:
    rates = {}
    for workers in CONCURRENCY:
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(ask, questions))
        rates[str(workers)] = round(len(questions) / (time.perf_counter() - started), 1)
    return rates


def cold_start(command: list[str]) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "QABOT_MODELS_READER": NO_READER})
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 2)


def passages_of(size: int) -> list:
    from retrieval.ingest.splitter import SentencePassageSplitter

    return SentencePassageSplitter().run(documents=build_corpus(size))["documents"]


def derived_vectors(passages: list, embed: Callable[[list[str]], Any]) -> tuple[Any, Any, list[str]]:
    """Passage vectors as the normalised mean of their sentences' real vectors (large corpora)."""
    import numpy as np

    sentences = [(p.content or "")[a:b] for p in passages for a, b in p.meta["sentence_spans"]]
    unique = sorted(set(sentences))
    vectors = np.asarray(embed(unique), dtype=np.float32)
    position = {text: i for i, text in enumerate(unique)}
    sentence_vectors = vectors[[position[s] for s in sentences]]
    counts = [len(p.meta["sentence_spans"]) for p in passages]
    bounds = np.cumsum([0, *counts])
    means = np.add.reduceat(sentence_vectors, bounds[:-1], axis=0)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    return means.astype(np.float32), sentence_vectors.astype(np.float32), sentences


# --------------------------------------------------------------------------- qabot
def ours(size: int, folder: Path, questions: list[tuple[str, str]], embed_limit: int) -> dict[str, Any]:
    import numpy as np

    from retrieval.stores.embedded.index_folder import IndexData, load_index, save_index
    from retrieval.stores.embedded.retrievers import LexicalIndex, build_bm25
    from retrieval.stores.protocol import PassageRecord
    from retrieval.stores.terms import passage_search_text

    settings = load_settings(index={"dir": folder / "index"}, models={"reader": NO_READER})
    engine = QAEngine(settings)
    engine.index_paths([ROOT / "seeds"])  # loads the model and makes the ONNX export; not measured
    result: dict[str, Any] = {}
    passages = passages_of(size)
    if size <= embed_limit:
        articles = build_corpus(size)
        report, ms = timed(lambda: QAEngine(settings).index_documents(articles, rebuild=True))
        result["passages"] = report.passages_total
        result["build_passages_per_s"] = round(report.passages_total / (ms / 1000), 1)
    else:
        passage_vectors, sentence_vectors, _ = derived_vectors(passages, lambda texts: engine._onnx.embed(texts, 64))
        data = IndexData.empty(engine.embedding_id, passage_vectors.shape[1])
        data.passages = [
            PassageRecord(p.id, p.content or "", p.meta["title"], p.meta["source"], p.meta["sentence_spans"])
            for p in passages
        ]
        data.passage_embeddings, data.sentence_embeddings = passage_vectors, sentence_vectors
        data.sentence_rows = np.repeat(
            np.arange(len(passages), dtype=np.int32), [len(p.meta["sentence_spans"]) for p in passages]
        )
        texts = [passage_search_text(p) for p in data.passages]
        save_index(settings.index_dir, data, write_extra=lambda f: build_bm25(texts, f / "bm25"))
        result["passages"] = len(passages)
    fresh = QAEngine(settings)
    index, load_ms = timed(lambda: load_index(settings.index_dir, fresh.embedding_id))
    _, bm25_ms = timed(lambda: LexicalIndex(index.folder / "bm25"))
    result["index_load_s"] = round((load_ms + bm25_ms) / 1000, 2)
    fresh.warm_up()
    pipeline = fresh.pipeline
    components = {
        name: pipeline.get_component(name) for name in ("embedder", "bm25", "dense", "joiner", "ranker", "answerer")
    }
    # Every question pays for reading its passages: the reading cache would otherwise serve the
    # full ask below from the stage-by-stage pass just before it.
    components["answerer"].cache = 0
    stages: dict[str, list[float]] = {
        name: [] for name in ("query_embedding", "bm25", "dense", "fusion", "sentence_answer")
    }
    totals, hits = [], 0
    for number, (question, gold) in enumerate(questions):
        embedding, t_embed = timed(lambda: components["embedder"].run(text=question)["embedding"])
        lexical, t_bm25 = timed(lambda: components["bm25"].run(query=question)["documents"])
        dense, t_dense = timed(lambda: components["dense"].run(query_embedding=embedding)["documents"])
        fused, t_fuse = timed(lambda: components["joiner"].run(documents=[lexical, dense])["documents"])
        _, t_answer = timed(
            lambda: components["answerer"].run(
                query=question,
                documents=components["ranker"].run(query_embedding=embedding, question=question, documents=fused)[
                    "documents"
                ],
            )
        )
        answer, t_total = timed(lambda: fresh.ask(question))
        if number < 3:
            continue  # warm-up
        for name, value in zip(stages, (t_embed, t_bm25, t_dense, t_fuse, t_answer), strict=True):
            stages[name].append(value)
        totals.append(t_total)
        hits += bool(answer.passages) and answer.passages[0].source == gold
    result["stages_ms"] = {name: round(statistics.median(v), 2) for name, v in stages.items()}
    result["total_ms_p50"] = round(percentile(totals, 50), 2)
    result["total_ms_p95"] = round(percentile(totals, 95), 2)
    result["recall_at_1"] = round(hits / len(totals), 3)
    result["qps"] = throughput(lambda q: fresh.ask(q), [q for q, _ in questions[:40]])
    qabot = Path(sys.executable).parent / "qabot"
    result["cold_start_s"] = cold_start(
        [str(qabot), "ask", "--json", "--index", str(settings.index_dir), questions[0][0]]
    )
    return result


# --------------------------------------------------------------------------- baseline
BASELINE_QUERY = """
import sys, time
from haystack import Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder
store = InMemoryDocumentStore.load_from_disk(sys.argv[1])
p = Pipeline()
p.add_component("embedder", SentenceTransformersTextEmbedder(model=sys.argv[2], progress_bar=False))
p.add_component("bm25", InMemoryBM25Retriever(store))
p.add_component("dense", InMemoryEmbeddingRetriever(store))
p.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion"))
p.connect("embedder.embedding", "dense.query_embedding")
p.connect("bm25", "joiner")
p.connect("dense", "joiner")
p.run({"embedder": {"text": sys.argv[3]}, "bm25": {"query": sys.argv[3]}})
"""


def baseline(size: int, folder: Path, questions: list[tuple[str, str]], embed_limit: int) -> dict[str, Any]:
    from haystack import Document, Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )

    from retrieval.models.resolve import resolve_model

    model = str(resolve_model("sentence-transformers/all-MiniLM-L6-v2").path)
    passages = passages_of(size)
    documents = [
        Document(content=p.content, meta={"title": p.meta["title"], "source": p.meta["source"]}) for p in passages
    ]
    warm = SentenceTransformersDocumentEmbedder(model=model, progress_bar=False)
    warm.warm_up()
    warm.run(documents=documents[:8])  # loads the model; not measured
    store = InMemoryDocumentStore()
    result: dict[str, Any] = {"passages": len(documents)}
    if size <= embed_limit:

        def build() -> None:
            embedder = SentenceTransformersDocumentEmbedder(model=model, progress_bar=False)
            embedder.warm_up()
            store.write_documents(embedder.run(documents=documents)["documents"])

        _, ms = timed(build)
        result["build_passages_per_s"] = round(len(documents) / (ms / 1000), 1)
    else:
        backend = warm.embedding_backend
        passage_vectors, _, _ = derived_vectors(
            passages, lambda texts: backend.embed(texts, batch_size=64, normalize_embeddings=True)
        )
        for document, vector in zip(documents, passage_vectors, strict=True):
            document.embedding = vector.tolist()
        store.write_documents(documents)
    path = folder / "store.json"
    store.save_to_disk(str(path))
    store, load_ms = timed(lambda: InMemoryDocumentStore.load_from_disk(str(path)))
    result["index_load_s"] = round(load_ms / 1000, 2)
    embedder = SentenceTransformersTextEmbedder(model=model, progress_bar=False)
    bm25, dense = InMemoryBM25Retriever(store), InMemoryEmbeddingRetriever(store)
    joiner = DocumentJoiner(join_mode="reciprocal_rank_fusion")
    pipeline = Pipeline()
    for name, component in (("embedder", embedder), ("bm25", bm25), ("dense", dense), ("joiner", joiner)):
        pipeline.add_component(name, component)
    pipeline.connect("embedder.embedding", "dense.query_embedding")
    pipeline.connect("bm25", "joiner")
    pipeline.connect("dense", "joiner")
    pipeline.warm_up()

    def ask(question: str) -> list:
        return pipeline.run({"embedder": {"text": question}, "bm25": {"query": question}})["joiner"]["documents"]

    stages: dict[str, list[float]] = {name: [] for name in ("query_embedding", "bm25", "dense", "fusion")}
    totals, hits = [], 0
    for number, (question, gold) in enumerate(questions):
        embedding, t_embed = timed(lambda: embedder.run(text=question)["embedding"])
        lexical, t_bm25 = timed(lambda: bm25.run(query=question)["documents"])
        found, t_dense = timed(lambda: dense.run(query_embedding=embedding)["documents"])
        _, t_fuse = timed(lambda: joiner.run(documents=[lexical, found]))
        ranked, t_total = timed(lambda: ask(question))
        if number < 3:
            continue
        for name, value in zip(stages, (t_embed, t_bm25, t_dense, t_fuse), strict=True):
            stages[name].append(value)
        totals.append(t_total)
        hits += bool(ranked) and ranked[0].meta["source"] == gold
    result["stages_ms"] = {name: round(statistics.median(v), 2) for name, v in stages.items()}
    result["total_ms_p50"] = round(percentile(totals, 50), 2)
    result["total_ms_p95"] = round(percentile(totals, 95), 2)
    result["recall_at_1"] = round(hits / len(totals), 3)
    result["qps"] = throughput(ask, [q for q, _ in questions[:40]])
    result["cold_start_s"] = cold_start([sys.executable, "-c", BASELINE_QUERY, str(path), model, questions[0][0]])
    return result


# --------------------------------------------------------------------------- driver
def worker(system: str, size: int, questions: int, embed_limit: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run = ours if system == "ours" else baseline
        result = run(size, Path(folder), sample_questions(questions), embed_limit)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def table(results: dict[str, Any]) -> str:
    lines = [
        "| passages | system | build passages/s | index load s | cold start s | embed ms | BM25 ms | dense ms | fusion ms | sentence ms | p50 ms | p95 ms | q/s 1 / 4 / 16 | recall@1 | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, pair in results["sizes"].items():
        for system in ("ours", "baseline"):
            r = pair[system]
            s = r["stages_ms"]
            lines.append(
                f"| {r['passages']:,} | {'qabot' if system == 'ours' else 'plain Haystack'} | {r.get('build_passages_per_s', '–')} "
                f"| {r['index_load_s']} | {r['cold_start_s']} | {s['query_embedding']} | {s['bm25']} | {s['dense']} "
                f"| {s['fusion']} | {s.get('sentence_answer', '–')} | {r['total_ms_p50']} | {r['total_ms_p95']} "
                f"| {' / '.join(str(r['qps'][c]) for c in ('1', '4', '16'))} | {r['recall_at_1']} | {r['peak_rss_mb']} |"
            )
        ratio = pair["baseline"]["total_ms_p50"] / max(pair["ours"]["total_ms_p50"], 1e-9)
        lines.append(f"| | **ratio** | | | | | | | | | **{ratio:.1f}× faster** | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--embed-limit", type=int, default=10000)
    parser.add_argument("--worker", choices=["ours", "baseline"])
    parser.add_argument("--size", type=int)
    parser.add_argument("--resume", action="store_true", help="Reuse results saved by an earlier, interrupted run.")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.size, args.questions, args.embed_limit)
        return
    results: dict[str, Any] = {
        "cores": os.cpu_count(),
        "questions": args.questions,
        "embed_limit": args.embed_limit,
        "sizes": {},
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    for size in (int(s) for s in args.sizes.split(",")):
        pair = {}
        for system in ("ours", "baseline"):
            part = out / f"scale-{system}-{size}.json"
            if args.resume and part.is_file():
                pair[system] = json.loads(part.read_text())
                continue
            command = [sys.executable, __file__, "--worker", system, "--size", str(size)]
            command += ["--questions", str(args.questions), "--embed-limit", str(args.embed_limit)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{system} at {size} passages failed:\n{done.stderr[-3000:]}")
            pair[system] = json.loads(done.stdout.strip().splitlines()[-1])
            part.write_text(json.dumps(pair[system]) + "\n")
            print(f"{size} {system}: {json.dumps(pair[system])}", flush=True)
        results["sizes"][str(size)] = pair
    (out / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "scale.md").write_text(f"Measured on {results['cores']} cores.\n\n" + table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
