"""A Milvus Lite write cut short by `kill -9`: every passage left in the collection belongs to a
source that `qabot sources` lists and `qabot remove` removes, and indexing again completes.

Real `qabot` processes on a real Milvus Lite folder; the passages are counted with pymilvus in a
process of its own (Milvus Lite opens a folder in one process at a time). Passages the source
table lacks altogether (as collections written before the sources were recorded first may hold)
are listed as incomplete and removable too.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import MISSING_READER, QABOT, SEED_ARTICLE, make_settings, run_qabot

pytest.importorskip("pymilvus")

ARTICLES, SENTENCES = 20, 40  # a passage a sentence: 800 passages, four inserts of 256 and one of 32
PASSAGES = ARTICLES * SENTENCES
FACT = "The Pellworth lighthouse was repainted by Marta Quist in May."
WRITING = re.compile(rb"writing to Milvus\D*?(\d+)/(\d+)")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
COUNT_PASSAGES = """
import json, sys
from collections import Counter
from pymilvus import MilvusClient
client = MilvusClient(uri=sys.argv[1])
client.load_collection(sys.argv[2])
iterator = client.query_iterator(sys.argv[2], batch_size=1000, filter="", output_fields=["source"])
held = Counter()
while batch := iterator.next():
    held.update(row["source"] for row in batch)
print(json.dumps(held))
"""


def write_articles(folder: Path) -> None:
    """ARTICLES articles of SENTENCES sentences of over 20 words each; one of them holds FACT."""
    folder.mkdir()
    names = ["Ana Lopez", "Ines Duarte", "Edith Marsh", "Tomas Berg", "Lena Novak", "Omar Haddad"]
    places = ["ferry", "bridge", "orchard", "school", "market", "museum", "library", "stadium"]
    for number in range(ARTICLES):
        pick = random.Random(number)
        sentences = [
            f"In week {week} of report {number}, {pick.choice(names)} opened the new {pick.choice(places)} "
            f"near the old {pick.choice(places)} in district {pick.randint(1, 999)} after a long debate."
            for week in range(SENTENCES)
        ]
        if number == 5:
            sentences[7] = FACT.replace(".", " after the storms of the winter had stripped its old paint away.")
        (folder / f"report-{number:02d}.txt").write_text(f"Town report {number}\n\n" + "\n".join(sentences) + "\n")


def milvus_env(tmp_path: Path, uri: Path) -> dict[str, str]:
    return {
        "QABOT_MODELS_READER": MISSING_READER,
        "QABOT_DATA_DIR": str(tmp_path / "data"),
        "QABOT_STORE_BACKEND": "milvus",
        "QABOT_STORE_URI": str(uri),
        "QABOT_STORE_COLLECTION": "killed",
        "QABOT_INDEX_PASSAGE_WORDS": "20",  # a passage a sentence: many passages for few sentences
        "QABOT_INDEX_OVERLAP_SENTENCES": "0",
    }


def held_passages(uri: Path) -> Counter[str]:
    """The collection's passages per source, counted with pymilvus."""
    result = subprocess.run(
        [sys.executable, "-c", COUNT_PASSAGES, str(uri), "killed"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return Counter(json.loads(result.stdout.strip().splitlines()[-1]))


def index_killed_while_inserting(folder: Path, env: dict[str, str]) -> tuple[int, str]:
    """Start `qabot index FOLDER` and SIGKILL it as soon as its progress bar shows passages written
    to Milvus, before all of them are; (its exit status, the progress it showed last)."""
    # Rich draws its progress bars into a pipe as into a terminal with these.
    full_env = {**os.environ, **env, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}
    process = subprocess.Popen(
        [str(QABOT), "index", str(folder)], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    shown, last = b"", ""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            ready, _, _ = select.select([process.stderr], [], [], 0.5)
            chunk = os.read(process.stderr.fileno(), 1 << 16) if ready else b""
            if ready and not chunk:
                break
            shown += chunk
            written = [(int(done), int(total)) for done, total in WRITING.findall(ANSI.sub(b"", shown))]
            if written and 0 < written[-1][0] < written[-1][1]:
                process.send_signal(signal.SIGKILL)
                last = f"{written[-1][0]}/{written[-1][1]}"
                break
    finally:
        if process.poll() is None and not last:
            process.kill()
        process.wait(timeout=30)
    return process.returncode, last or ANSI.sub(b"", shown)[-2000:].decode("utf-8", "replace")


def test_kill_9_while_inserting_passages_leaves_every_passage_listed_and_removable(tmp_path):
    folder = tmp_path / "articles"
    write_articles(folder)
    # The kill lands mid-write unless the last few inserts (a tenth of a second each) beat it: try
    # again on a fresh folder then, at most three times.
    for attempt in range(3):
        uri = tmp_path / f"milvus-{attempt}.db"
        env = milvus_env(tmp_path, uri)
        status, shown = index_killed_while_inserting(folder, env)
        assert status in (-signal.SIGKILL, 0), shown
        held = held_passages(uri)
        if status == -signal.SIGKILL and 0 < sum(held.values()) < PASSAGES:
            break
    else:
        pytest.fail(f"qabot index was never killed while inserting: {status}, {shown}")

    listed = run_qabot("sources", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    table = json.loads(listed.stdout)["sources"]
    assert set(held) <= set(table)  # every passage's source is listed...
    assert {source: table[source]["passages"] for source in held} == dict(held)  # ...with its passages
    assert all(table[source].get("incomplete") for source in held)
    assert sum(not entry.get("incomplete") for entry in table.values()) == 0  # nothing was finished

    removed = run_qabot("remove", "--json", *sorted(table), env=env)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout) == {"removed": len(table), "passages_total": 0}
    assert held_passages(uri) == Counter()

    again = run_qabot("index", "--json", str(folder), env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["passages_total"] == PASSAGES
    assert held_passages(uri) == Counter({str(path.resolve()): SENTENCES for path in folder.iterdir()})
    answer = run_qabot("ask", "--json", "Who repainted the Pellworth lighthouse?", env=env)
    assert answer.returncode == 0, answer.stderr
    assert "Marta Quist" in json.loads(answer.stdout)["evidence"]
    assert json.loads(answer.stdout)["source"] == str((folder / "report-05.txt").resolve())


def test_passages_missing_from_the_source_table_are_listed_as_incomplete_and_removable(tmp_path):
    from retrieval.engine import QAEngine

    engine = QAEngine(make_settings(tmp_path / "index", store={"backend": "milvus", "uri": str(tmp_path / "m.db")}))
    engine.index_paths([SEED_ARTICLE])
    store = engine.store
    source = str(SEED_ARTICLE.resolve())
    stored = store.sources()[source]
    # What a collection written before the sources were recorded first may hold: no row for them.
    store.call(lambda client: client.delete(store.sources_collection, ids=[source]), "deleting")
    assert store._source_table() == {}

    listed = store.sources()[source]

    assert listed == {"title": stored["title"], "passages": store.count(), "incomplete": True}
    assert engine.index_paths([SEED_ARTICLE]).files_indexed == 1  # indexed again, not "unchanged"
    assert store.sources()[source] == stored
    engine.remove_sources([source])
    assert store.count() == 0 and store.sources() == {}
