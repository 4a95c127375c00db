"""Shared fixtures: a real index over seeds/ built once, a real engine, a tiny real QA model.

Tests never reach the network: the hub is switched off, and the reader model is either a name
that is on no disk (sentence answers) or a tiny random-weight model saved by `tiny_reader_dir`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
# One ONNX export of the embedding model for the whole session, outside the user's cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="qabot-test-cache-")
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _name in [name for name in os.environ if name.startswith("QABOT_")]:
    del os.environ[_name]

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_ARTICLE = SEEDS / "000_2702eb2bcdd00dd6.txt"
MISSING_READER = "qabot-tests/no-such-reader-model"
QABOT = Path(sys.executable).parent / "qabot"


def _shipped_files() -> dict[str, float]:
    return {str(path): path.stat().st_mtime for path in (ROOT / "models").rglob("*") if path.is_file()}


@pytest.fixture(scope="session", autouse=True)
def shipped_models_stay_as_they_are() -> Iterator[None]:
    """No test may write into models/ (a training run with the default --out would replace the
    shipped reader)."""
    before = _shipped_files()
    yield
    assert _shipped_files() == before, "a test changed the shipped models in models/"


def make_settings(index_dir: Path, reader: str = MISSING_READER, **sections):
    """Settings for a test: its own index and data folders, no reader model unless given."""
    from retrieval.settings import load_settings

    sections.setdefault("models", {})["reader"] = reader
    sections.setdefault("index", {})["dir"] = index_dir
    sections.setdefault("data", {})["dir"] = index_dir.parent / "data"
    return load_settings(**sections)


def _built_index(tmp_path_factory: pytest.TempPathFactory, name: str, articles: Path) -> Path:
    from retrieval.engine import QAEngine

    index_dir = tmp_path_factory.mktemp(name) / "index"
    QAEngine(make_settings(index_dir)).index_paths([articles])
    return index_dir


def _warm_engine(index_dir: Path, reader: str = MISSING_READER):
    from retrieval.engine import QAEngine

    engine = QAEngine(make_settings(index_dir, reader=reader))
    engine.warm_up()
    return engine


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of seeds/ built once per test session (do not write to it)."""
    return _built_index(tmp_path_factory, "seed", SEEDS)


@pytest.fixture(scope="session")
def seed_engine(seed_index_dir: Path):
    """A warm engine over the seed index, without a reader model (answers are sentences)."""
    return _warm_engine(seed_index_dir)


@pytest.fixture(scope="session")
def reader_engine(seed_index_dir: Path):
    """A warm engine over the seed index as users get it: the shipped reader, run by ONNX Runtime."""
    from retrieval.models.resolve import DEFAULT_READER_MODEL

    return _warm_engine(seed_index_dir, DEFAULT_READER_MODEL)


@pytest.fixture()
def copy_of_seed_index(seed_index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the seed index that a test may change or damage."""
    target = tmp_path / "index"
    shutil.copytree(seed_index_dir, target)
    return target


@pytest.fixture(scope="session")
def tiny_reader_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny extractive QA model with random weights, saved the way hub models are.

    It uses the real BERT tokenizer shipped with the embedding model, so the whole transformers
    loading path (config, tokenizer, safetensors weights) runs as for a downloaded model.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    from retrieval.models.resolve import resolve_model

    folder = tmp_path_factory.mktemp("tiny-reader")
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model("sentence-transformers/all-MiniLM-L6-v2").path))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertForQuestionAnswering(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_qabot(*args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 180):
    """Run the installed `qabot` console script as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(QABOT), *args], input=input, capture_output=True, text=True, env=full_env, timeout=timeout
    )


def qabot_bot_env(api: Any, index_dir: Path, data_dir: Path, token: str | None) -> dict[str, str]:
    """The environment for `qabot bot` in a subprocess, talking to the stand-in Bot API `api`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("QABOT_") and name != "TELEGRAM_BOT_TOKEN"
    }
    env.update(
        QABOT_TELEGRAM_BASE_URL=api.base_url,
        QABOT_INDEX_DIR=str(index_dir),
        QABOT_DATA_DIR=str(data_dir),
        QABOT_MODELS_READER=MISSING_READER,
        QABOT_CONFIG=str(ROOT / "config" / "qabot.toml"),
    )
    if token is not None:
        env["TELEGRAM_BOT_TOKEN"] = token
    return env


@contextlib.contextmanager
def running_qabot_bot(api: Any, env: dict[str, str], *args: str, started: str) -> Iterator[subprocess.Popen[str]]:
    """`qabot bot ARGS` in a subprocess, once it has called the stand-in's method `started`; killed
    afterwards if it is still running.
    """
    bot = subprocess.Popen(
        [str(QABOT), "bot", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        api.wait_for(lambda: api.calls(started) or bot.poll() is not None, timeout=120, what="the bot")
        assert bot.poll() is None, bot.communicate()[1]
        yield bot
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.communicate()


def one_line_error(result) -> str:
    """The single `error:` line a failed command printed; no traceback, no "unexpected" error."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "unexpected" not in output, output[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


NEWS = ROOT / "tests" / "fixtures" / "news"  # seven short news articles on different subjects


@pytest.fixture(scope="session")
def news_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the seven news articles, built once per test session (do not write to it)."""
    return _built_index(tmp_path_factory, "news", NEWS)


@pytest.fixture(scope="session")
def news_engine(news_index_dir: Path):
    """A warm engine over the news articles with the shipped reader, as users get it."""
    from retrieval.models.resolve import DEFAULT_READER_MODEL

    return _warm_engine(news_index_dir, DEFAULT_READER_MODEL)
