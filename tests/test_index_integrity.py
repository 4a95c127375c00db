"""A damaged, foreign or half-written index is detected and named, never read as if whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from retrieval.engine import QAEngine
from retrieval.models.resolve import resolve_model
from retrieval.stores.embedded.index_folder import IndexDamagedError, current_generation
from tests.conftest import MISSING_READER, make_settings, run_qabot


def _generation(index_dir: Path) -> Path:
    generation = current_generation(index_dir)
    assert generation is not None
    return generation


def test_truncated_embeddings_are_detected(copy_of_seed_index):
    embeddings = _generation(copy_of_seed_index) / "passage_embeddings.npy"
    embeddings.write_bytes(embeddings.read_bytes()[:-100])
    with pytest.raises(IndexDamagedError, match="qabot index --rebuild"):
        QAEngine(make_settings(copy_of_seed_index)).ask("Who declared the talks dead?")


def test_changed_passage_text_fails_its_checksum(copy_of_seed_index):
    passages = _generation(copy_of_seed_index) / "passages.jsonl"
    passages.write_text(passages.read_text().replace("Donald Trump", "Someone Else"))
    with pytest.raises(IndexDamagedError, match="checksum"):
        QAEngine(make_settings(copy_of_seed_index)).ask("Who declared the talks dead?")


def test_unreadable_manifest_is_reported_in_one_line(copy_of_seed_index, tmp_path):
    (_generation(copy_of_seed_index) / "manifest.json").write_text("{not json")
    result = run_qabot("ask", "--index", str(copy_of_seed_index), "Who?", env={"QABOT_MODELS_READER": MISSING_READER})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "damaged" in result.stderr and "--rebuild" in result.stderr


def test_index_built_with_another_embedding_model_is_refused(copy_of_seed_index):
    other_name = str(resolve_model("sentence-transformers/all-MiniLM-L6-v2").path)
    settings = make_settings(copy_of_seed_index, models={"embedding": other_name})
    with pytest.raises(IndexDamagedError, match="built with embedding model"):
        QAEngine(settings).ask("Who declared the talks dead?")


def test_rebuild_repairs_a_damaged_index(copy_of_seed_index):
    from tests.conftest import SEEDS

    (_generation(copy_of_seed_index) / "sentence_rows.npy").write_bytes(b"garbage")
    engine = QAEngine(make_settings(copy_of_seed_index))
    engine.index_paths([SEEDS], rebuild=True)
    assert "Donald Trump" in engine.ask("Who declared the talks dead?").text


def test_second_indexer_stops_with_a_clear_message(copy_of_seed_index):
    from tests.conftest import SEEDS

    with FileLock(str(copy_of_seed_index / ".lock")):
        result = run_qabot(
            "index", "--index", str(copy_of_seed_index), str(SEEDS), env={"QABOT_MODELS_READER": MISSING_READER}
        )
    assert result.returncode == 3
    assert "another qabot is indexing" in result.stderr
    assert "Traceback" not in result.stderr


KILLER = """
import os, signal, sys
from pathlib import Path
import retrieval.stores.embedded.index_folder as store
from retrieval.engine import QAEngine
from tests.conftest import make_settings

point = sys.argv[2]
real_save, real_write = store.np.save, store._atomic_write_text

def save(path, array, *args, **kwargs):
    real_save(path, array, *args, **kwargs)
    if point == "after-first-array":
        os.kill(os.getpid(), signal.SIGKILL)

def write_text(path, text):
    if point == "before-swap" and path.name == "CURRENT":
        os.kill(os.getpid(), signal.SIGKILL)
    real_write(path, text)

store.np.save, store._atomic_write_text = save, write_text
QAEngine(make_settings(Path(sys.argv[1]))).index_paths([Path(sys.argv[3])])
"""


@pytest.mark.parametrize("point", ["after-first-array", "before-swap"])
def test_kill_during_write_leaves_the_old_index_whole(copy_of_seed_index, tmp_path, point):
    before = QAEngine(make_settings(copy_of_seed_index)).ask("Who declared the talks dead?")
    live = _generation(copy_of_seed_index).name
    article = tmp_path / "bridge.txt"
    article.write_text("Bridge reopens\n\nThe harbour bridge reopened on Monday. Mayor Ana Lopez cut the ribbon.\n")
    root = Path(__file__).resolve().parent.parent
    process = subprocess.run(
        [sys.executable, "-c", KILLER, str(copy_of_seed_index), point, str(article)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        timeout=300,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()[-2000:]
    half_written = [g for g in copy_of_seed_index.glob("gen-*") if g.name != live]
    assert half_written, "the kill came before the new generation was started"
    assert _generation(copy_of_seed_index).name == live
    after = QAEngine(make_settings(copy_of_seed_index)).ask("Who declared the talks dead?")
    assert after.text == before.text and after.passages == before.passages
    manifest = json.loads((_generation(copy_of_seed_index) / "manifest.json").read_text())
    assert not any("bridge" in source for source in manifest["sources"])
    # The next write succeeds and clears the half-written generation away.
    QAEngine(make_settings(copy_of_seed_index)).index_paths([article])
    assert not any(g.exists() for g in half_written)
