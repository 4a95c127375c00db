"""Indexing within bounds: a cap on passages per file, and files read one at a time, never all up front."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from retrieval.engine import QAEngine
from retrieval.ingest.articles import ArticleLoader
from retrieval.ingest.splitter import SentencePassageSplitter
from tests.conftest import make_settings

CAP = 3


def write_article(path: Path, sentences: int) -> Path:
    body = " ".join(f"Sentence {number} of {path.stem} tells of the harbour bridge." for number in range(sentences))
    path.write_text(f"News from {path.stem}\n\n{body}\n", encoding="utf-8")
    return path


def test_a_file_with_more_passages_than_the_cap_keeps_only_the_first(tmp_path):
    long_article = write_article(tmp_path / "long.txt", sentences=60)
    short_article = write_article(tmp_path / "short.txt", sentences=3)
    index_settings = {"passage_words": 20, "max_passages_per_file": CAP}
    settings = make_settings(tmp_path / "index", index=index_settings)
    uncapped = SentencePassageSplitter(passage_words=20, max_passages=10_000)
    long_count, short_count = (
        len(uncapped.run(documents=[ArticleLoader().load(article)])["documents"])
        for article in (long_article, short_article)
    )
    assert long_count > 5 * CAP and short_count == CAP - 1

    engine = QAEngine(settings)
    report = engine.index_paths([long_article, short_article])

    passages = engine.index.passages
    by_file = {name: [p for p in passages if Path(p.source).name == name] for name in ("long.txt", "short.txt")}
    assert len(by_file["long.txt"]) == CAP
    assert by_file["long.txt"][0].content.startswith("Sentence 0 of long")  # the start of the article is kept
    assert len(by_file["short.txt"]) == short_count  # the cap is per file: a short file is kept whole
    assert report.passages_added == len(passages) == CAP + short_count


def test_indexing_a_folder_reads_each_file_only_after_the_previous_one_is_split(tmp_path, monkeypatch):
    folder = tmp_path / "articles"
    folder.mkdir()
    names = ["a.txt", "b.txt", "c.txt", "d.txt"]
    for name in names:
        write_article(folder / name, sentences=5)
    events: list[tuple[str, str]] = []

    def record(stage: str, name_of: Any, method: Any) -> Any:
        @functools.wraps(method)
        def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
            events.append((stage, name_of(*args, **kwargs)))
            return method(self, *args, **kwargs)

        return recorded

    monkeypatch.setattr(ArticleLoader, "load", record("read", lambda path, **_: Path(path).name, ArticleLoader.load))
    split = record("split", lambda documents: Path(documents[0].meta["source"]).name, SentencePassageSplitter.run)
    monkeypatch.setattr(SentencePassageSplitter, "run", split)

    report = QAEngine(make_settings(tmp_path / "index")).index_paths([folder])

    assert report.files_indexed == len(names)
    assert events == [(stage, name) for name in names for stage in ("read", "split")]


def test_a_run_on_sentence_is_cut_into_pieces_no_longer_than_the_caps():
    from retrieval.ingest.splitter import MAX_SENTENCE_CHARS, MAX_SENTENCE_WORDS, split_sentences

    run_on = " ".join(f"word{number}" for number in range(30_000))
    for text in (run_on, "x" * 200_000, f"A normal sentence. {run_on} Another one."):
        pieces = split_sentences(text)
        assert all(len(p) <= MAX_SENTENCE_CHARS and len(p.split()) <= MAX_SENTENCE_WORDS for p in pieces)
        assert "".join(pieces).replace(" ", "") == text.replace(" ", "")  # nothing lost, nothing added
    assert split_sentences("A normal sentence. Another one.") == ["A normal sentence.", "Another one."]


def test_a_question_over_an_index_with_run_on_sentences_costs_what_a_normal_one_costs(tmp_path):
    """Pages of one 30,000-word sentence and of one 4.5 MB word are indexed; `qabot ask` over them
    gives one short reply, its process's peak memory well under 600 MB (about 300 MB here)."""
    import json
    import os
    import subprocess

    from tests.conftest import QABOT

    folder = tmp_path / "hostile"
    folder.mkdir()
    words = " ".join(f"harbour{number % 50} bridge toll" for number in range(10_000))
    (folder / "run-on.txt").write_text(f"The harbour bridge\n\n{words}\n", encoding="utf-8")
    (folder / "one-word.txt").write_text("Bridge\n\n" + "b" * 4_500_000 + "\n", encoding="utf-8")
    index = str(tmp_path / "index")
    env = {**os.environ, "QABOT_DATA_DIR": str(tmp_path / "data")}
    subprocess.run([str(QABOT), "index", str(folder), "--index", index], env=env, check=True, capture_output=True)
    warm = [str(QABOT), "ask", "Who built the bridge?", "--index", index]  # the first ask exports the reader
    subprocess.run(warm, env=env, check=True, capture_output=True)
    for question in ("How much is the harbour bridge toll?", "What does harbour7 say about the bridge?"):
        command = [str(QABOT), "ask", question, "--index", index, "--json"]
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as process:
            peak_kb = _peak_memory_kb(process)
            output = process.stdout.read()
        assert process.returncode == 0
        answer = json.loads(output)
        assert peak_kb / 1024 < 600
        assert len(answer["evidence"]) <= 600 and len(answer["answer"]) <= 600


def _peak_memory_kb(process, limit_s: float = 120) -> int:
    """The process's peak resident memory (VmHWM), read until it exits. Not its rusage: a child forked
    from this test process counts the test process's own memory there."""
    import time

    status, peak, deadline = Path(f"/proc/{process.pid}/status"), 0, time.monotonic() + limit_s
    while process.poll() is None and time.monotonic() < deadline:
        try:
            lines = status.read_text().splitlines()
        except OSError:
            break
        peak = max([peak, *(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))])
        time.sleep(0.05)
    process.wait(timeout=max(1.0, deadline - time.monotonic()))
    return peak
