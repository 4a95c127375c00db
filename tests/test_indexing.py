"""Indexing: files become passages on disk, once each; bad files are skipped, not fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.engine import QAEngine
from retrieval.errors import IndexMissingError, InputError
from retrieval.ingest.articles import ArticleLoader, SkippedFile
from retrieval.ingest.splitter import SentencePassageSplitter, split_sentences
from retrieval.stores.embedded.index_folder import load_index
from tests.conftest import SEED_ARTICLE, make_settings

ARTICLE = """Harbour bridge reopens after repairs

The city's harbour bridge reopened on Monday after eight months of repairs.
Mayor Ana Lopez cut the ribbon at dawn. The repairs cost 40 million dollars.

Traffic is expected to return to normal by Friday.
"""


def _passages(index_dir: Path):
    return load_index(index_dir, QAEngine(make_settings(index_dir)).embedding_id).passages


def test_index_is_saved_and_loaded_without_reembedding(tmp_path):
    settings = make_settings(tmp_path / "index")
    report = QAEngine(settings).index_paths([SEED_ARTICLE])
    assert report.files_indexed == 1 and report.passages_total == report.passages_added > 0
    manifest_dir = next((tmp_path / "index").glob("gen-*"))
    manifest = json.loads((manifest_dir / "manifest.json").read_text())
    assert manifest["passage_count"] == report.passages_total
    assert manifest["embedding_model"].startswith("sentence-transformers/all-MiniLM-L6-v2")
    fresh = QAEngine(settings)
    assert "Donald Trump" in fresh.ask("Who declared the talks dead?").text


def test_reindexing_the_same_file_adds_no_duplicates(tmp_path):
    settings = make_settings(tmp_path / "index")
    first = QAEngine(settings).index_paths([SEED_ARTICLE])
    again = QAEngine(settings).index_paths([SEED_ARTICLE])
    assert again.files_unchanged == 1 and again.passages_added == 0
    ids = [p.id for p in _passages(tmp_path / "index")]
    assert len(ids) == len(set(ids)) == first.passages_total


def test_changed_file_replaces_its_old_passages(tmp_path):
    article = tmp_path / "bridge.txt"
    article.write_text(ARTICLE)
    settings = make_settings(tmp_path / "index")
    engine = QAEngine(settings)
    engine.index_paths([article, SEED_ARTICLE])
    article.write_text(ARTICLE.replace("Mayor Ana Lopez", "Governor Ben Okafor"))
    report = engine.index_paths([article, SEED_ARTICLE])
    assert report.files_indexed == 1 and report.files_unchanged == 1
    texts = " ".join(p.content for p in _passages(tmp_path / "index"))
    assert "Ben Okafor" in texts and "Ana Lopez" not in texts
    assert "Donald Trump" in texts
    assert "Okafor" in engine.ask("Who cut the ribbon at the bridge?").text


def test_bad_files_are_skipped_and_the_rest_indexed(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "good.txt").write_text(ARTICLE)
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02binary\x00data")
    (folder / "latin1.txt").write_bytes("Caf\xe9 news\n\nA story about caf\xe9s.".encode("latin-1"))
    (folder / "empty.md").write_text("  \n\n")
    report = QAEngine(make_settings(tmp_path / "index")).index_paths([folder])
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert reasons == {"binary.txt": "binary file", "latin1.txt": "not UTF-8 text", "empty.md": "empty file"}
    assert report.files_indexed == 1


def test_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        QAEngine(make_settings(tmp_path / "index")).index_paths([tmp_path / "nope"])


def test_asking_without_an_index_names_the_fix(tmp_path):
    with pytest.raises(IndexMissingError, match="qabot index") as error:
        QAEngine(make_settings(tmp_path / "missing")).ask("Who?")
    assert error.value.exit_code == 2


def test_txt_title_is_the_first_line(tmp_path):
    article = tmp_path / "a.txt"
    article.write_text("\n\n" + ARTICLE)
    document = ArticleLoader().load(article)
    assert document.meta["title"] == "Harbour bridge reopens after repairs"
    assert "Harbour bridge reopens" not in document.content


def test_markdown_and_html_are_read_with_titles(tmp_path):
    markdown = tmp_path / "a.md"
    markdown.write_text("# Bridge reopens\n\nThe bridge reopened on **Monday** after repairs.\n")
    html = tmp_path / "b.html"
    html.write_text(
        "<html><head><title>Port strike ends</title></head><body><article><h1>Port strike ends</h1>"
        "<p>Dock workers in the northern port ended their strike on Tuesday after a new wage deal was "
        "agreed with the port authority late on Monday night.</p></article></body></html>"
    )
    md_doc, html_doc = ArticleLoader().run(sources=[markdown, html])["documents"]
    assert md_doc.meta["title"] == "Bridge reopens"
    assert "Monday" in md_doc.content and "**" not in md_doc.content
    assert html_doc.meta["title"] == "Port strike ends"
    assert "wage deal" in html_doc.content and "<p>" not in html_doc.content


def test_oversized_file_is_skipped(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("Title\n\n" + "word " * 300_000)
    assert isinstance(ArticleLoader(max_file_mb=0.5).load(big), SkippedFile)


def test_passages_hold_whole_sentences_with_overlap():
    sentences = [f"Sentence number {i} has exactly seven words." for i in range(12)]
    from haystack import Document

    doc = Document(content=" ".join(sentences), meta={"source": "s", "title": "t"})
    passages = SentencePassageSplitter(passage_words=21, overlap_sentences=1).run(documents=[doc])["documents"]
    assert len(passages) > 3
    for passage in passages:
        assert len(passage.content.split()) <= 21
        for start, end in passage.meta["sentence_spans"]:
            assert passage.content[start:end] in sentences
    for before, after in zip(passages, passages[1:], strict=False):
        last = before.content[slice(*before.meta["sentence_spans"][-1])]
        first = after.content[slice(*after.meta["sentence_spans"][0])]
        assert last == first


def test_paragraph_breaks_end_sentences():
    assert split_sentences("A caption without a period\n\nThe story starts here. It goes on.") == [
        "A caption without a period",
        "The story starts here.",
        "It goes on.",
    ]
