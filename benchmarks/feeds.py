"""Web speed figures: articles fetched and indexed per second from a local news site, and answer
latency while a feed refresh runs beside it (as in `qabot bot`, where the refresh has a worker thread).

    .venv/bin/python benchmarks/feeds.py [--articles 100] [--repeats 3]

The site is the tests' news site on 127.0.0.1 (`tests/web_standin.py`); the engine answers the
seed questions from the seed articles plus the fetched ones, without a reader model (sentence
answers), as the tests do. Results are printed and written to benchmarks/results/feeds.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run import SEED_QUESTIONS, percentile  # noqa: E402
from retrieval.engine import QAEngine  # noqa: E402
from retrieval.settings import load_settings  # noqa: E402
from tests.web_standin import NewsSite, rss  # noqa: E402


def latencies_ms(engine: QAEngine, until: threading.Event | None = None, rounds: int = 5) -> list[float]:
    """Seed questions asked one after another: `rounds` times, or until `until` is set."""
    values = []
    done = 0
    while (until is None and done < rounds) or (until is not None and not until.is_set()):
        for question in SEED_QUESTIONS:
            started = time.perf_counter()
            engine.ask(question)
            values.append((time.perf_counter() - started) * 1000)
        done += 1
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100, help="articles in each refresh")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    date = time.strftime("%Y-%m-%d")
    runs = []
    with NewsSite() as site, tempfile.TemporaryDirectory() as folder:
        settings = load_settings(
            index={"dir": Path(folder) / "index"},
            data={"dir": Path(folder) / "data"},
            models={"reader": "qabot-benchmarks/no-reader"},
            fetch={"allow_private_hosts": True},
            feeds={"urls": [site.url("/feed.rss")]},
        )
        engine = QAEngine(settings)
        engine.index_paths([ROOT / "seeds"])
        engine.warm_up()
        latencies_ms(engine, rounds=2)  # warm-up, not measured
        for repeat in range(args.repeats):
            items = site.articles(f"/bench/{repeat}", args.articles, date)
            site.feed("/feed.rss", rss(items))
            quiet = latencies_ms(engine)
            refreshed = threading.Event()
            report_holder = []

            def refresh() -> None:
                report_holder.append(engine.web.refresh())
                refreshed.set()

            worker = threading.Thread(target=refresh)
            started = time.perf_counter()
            worker.start()
            during = latencies_ms(engine, until=refreshed)
            worker.join()
            report = report_holder[0]
            seconds = time.perf_counter() - started
            runs.append(
                {
                    "articles": report.new,
                    "failed": len(report.failed),
                    "seconds": round(seconds, 2),
                    "articles_per_s": round(report.new / seconds, 2),
                    "ask_p50_ms_quiet": round(percentile(quiet, 50), 1),
                    "ask_p50_ms_during_refresh": round(percentile(during, 50), 1),
                    "questions_during_refresh": len(during),
                }
            )
            print(json.dumps(runs[-1]), flush=True)
        # Fetching and indexing alone, with no questions asked meanwhile.
        items = site.articles("/bench/alone", args.articles, date)
        site.feed("/feed.rss", rss(items))
        started = time.perf_counter()
        alone = engine.web.refresh()
        seconds = time.perf_counter() - started
    median = sorted(runs, key=lambda run: run["articles_per_s"])[len(runs) // 2]
    results = {
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "note": (
            "local news site on 127.0.0.1; each refresh fetches and indexes `articles` new articles "
            "(about 4 sentences each) while the seed questions are asked one after another in another thread"
        ),
        "refresh_alone": {
            "articles": alone.new,
            "seconds": round(seconds, 2),
            "articles_per_s": round(alone.new / seconds, 2),
        },
        "refresh_with_questions": runs,
        "median_run": median,
    }
    print(json.dumps(results, indent=1))
    out = ROOT / "benchmarks" / "results" / "feeds.json"
    out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
