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

    monkeypatch.setattr(ArticleLoader, "load", record("read", lambda path: Path(path).name, ArticleLoader.load))
    split = record("split", lambda documents: Path(documents[0].meta["source"]).name, SentencePassageSplitter.run)
    monkeypatch.setattr(SentencePassageSplitter, "run", split)

    report = QAEngine(make_settings(tmp_path / "index")).index_paths([folder])

    assert report.files_indexed == len(names)
    assert events == [(stage, name) for name in names for stage in ("read", "split")]
