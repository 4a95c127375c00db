"""The extractive path: a real transformers model loaded from a folder, answering with a span."""

from __future__ import annotations

from retrieval.answerers import ExtractiveAnswerer
from retrieval.engine import QAEngine
from tests.conftest import make_settings


def test_engine_loads_reader_from_a_local_folder(seed_index_dir, tiny_reader_dir):
    engine = QAEngine(make_settings(seed_index_dir, reader=str(tiny_reader_dir)))
    answer = engine.ask("Who declared the talks dead?")
    assert engine.answer_kind == "extractive"
    assert engine.reader_notice is None
    assert answer.notices == ()
    assert answer.kind in {"extractive", "none"}
    assert answer.passages


def test_extractive_answer_is_a_span_of_its_evidence(seed_index_dir, tiny_reader_dir):
    engine = QAEngine(make_settings(seed_index_dir, reader=str(tiny_reader_dir)))
    engine.warm_up()
    answerer = engine.pipeline.get_component("answerer")
    documents = engine.pipeline.get_component("dense").run(
        engine.pipeline.get_component("embedder").run(text="Who declared the talks dead?")["embedding"]
    )["documents"]
    # Random weights: force a span (no no-answer, no threshold) to check the structure around it.
    forced = ExtractiveAnswerer(answerer.reader, engine.index, passages=2, min_score=0.0, no_answer=False)
    extracted = forced.run(query="Who declared the talks dead?", documents=documents)["answer"]
    assert extracted is not None
    passage = extracted.document.content
    span = passage[extracted.document_offset.start : extracted.document_offset.end]
    assert span == extracted.data
    assert extracted.meta["kind"] == "extractive"
    evidence, offset = extracted.meta["evidence"], extracted.meta["evidence_offset"]
    assert passage[offset : offset + len(evidence)] == evidence
    assert extracted.data in evidence
    answer = engine._to_answer("q", extracted, documents, "q", ())
    assert answer.evidence[answer.answer_start : answer.answer_end] == answer.text


def test_unloadable_reader_falls_back_to_sentences_with_a_notice(seed_index_dir, tmp_path):
    broken = tmp_path / "broken-reader"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert"}')
    engine = QAEngine(make_settings(seed_index_dir, reader=str(broken)))
    answer = engine.ask("Who declared the talks dead?")
    assert answer.kind == "sentence"
    assert "Donald Trump" in answer.text
    assert any("could not be loaded" in notice for notice in answer.notices)
