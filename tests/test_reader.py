"""The extractive path: the shipped reader, both ways of running it, and every way it can fail to load."""

from __future__ import annotations

import json
import shutil

import pytest
from haystack import Document

from retrieval.answering.answer import Turn
from retrieval.answering.decide import ExtractiveAnswerer
from retrieval.answering.rules import ReadingModel
from retrieval.answering.span_reader import OnnxExtractiveReader
from retrieval.engine import QAEngine
from retrieval.errors import ConfigError
from retrieval.models.resolve import DEFAULT_READER_MODEL, READING_MODEL_WEIGHTS, reader_calibration, resolve_model
from tests.conftest import make_settings, run_qabot

SHIPPED = resolve_model(DEFAULT_READER_MODEL).path


def test_the_shipped_reader_is_found_without_any_download():
    found = resolve_model(DEFAULT_READER_MODEL)
    assert found.origin == "shipped"
    assert (found.path / "model.safetensors").is_file()
    assert (found.path / "calibration.json").is_file()


def test_shipped_reader_answers_with_a_short_span_from_its_evidence(reader_engine):
    answer = reader_engine.ask("Who declared the talks dead?")
    assert reader_engine.answer_kind == "extractive"
    assert answer.kind == "extractive"
    assert "Donald Trump" in answer.text
    assert len(answer.text.split()) <= 4
    assert answer.evidence[answer.answer_start : answer.answer_end] == answer.text
    assert answer.title == "Mike Pompeo hails important breakthrough in US-Taliban talks"
    assert 0.0 < answer.score <= 1.0


def test_follow_up_gets_its_own_span(reader_engine):
    first = reader_engine.ask("Who declared the talks dead?")
    answer = reader_engine.ask("When did he do that?", [Turn("Who declared the talks dead?", first)])
    assert answer.kind == "extractive"
    assert answer.text == "September"


def test_shipped_reader_says_it_does_not_know_what_the_articles_do_not_say(reader_engine):
    answer = reader_engine.ask("What is the capital of France?")
    assert answer.kind == "none"
    assert answer.text == ""
    assert answer.passages  # what was searched is still shown


def test_calibrated_settings_come_from_the_model_unless_set(seed_index_dir, reader_engine):
    calibration = json.loads((SHIPPED / "calibration.json").read_text())
    assert reader_engine.rules.min_score == calibration["min_reader_score"]
    assert reader_engine._reader.calibration_factor == calibration["calibration_factor"]
    fitted = calibration["no_answer_model"]
    weights = tuple(fitted.get(key, 0.0) for key in READING_MODEL_WEIGHTS)
    assert reader_engine.rules.no_answer_model == ReadingModel(*weights)
    assert reader_engine.pipeline.get_component("answerer").no_answer_model is not None
    fallback = calibration["fallback_sentence_score"]
    assert reader_engine.pipeline.get_component("answerer").fallback_score == fallback
    engine = QAEngine(
        make_settings(
            seed_index_dir,
            reader=DEFAULT_READER_MODEL,
            answer={"min_reader_score": 0.99, "fitted_no_answer": False, "fallback_sentence_score": 0.6},
        )
    )
    engine.warm_up()
    assert engine.rules.min_score == 0.99
    assert engine.rules.no_answer_model is None
    assert engine.pipeline.get_component("answerer").no_answer_model is None
    assert engine.pipeline.get_component("answerer").fallback_score == 0.6


def test_an_unsure_span_gives_way_to_its_best_sentence_only_where_the_passages_hold_an_answer(reader_engine):
    answerer = reader_engine.pipeline.get_component("answerer")
    readings = {}
    for question in ("Who declared the talks dead?", "What is the capital of France?"):
        run = reader_engine.pipeline.run(
            {"followup": {"question": question, "history": []}}, include_outputs_from={"ranker"}
        )
        readings[question] = answerer.read(question, run["ranker"]["documents"])
    dead, france = readings["Who declared the talks dead?"], readings["What is the capital of France?"]
    assert dead.span is not None and dead.best_sentence is not None and answerer.answerable(dead) >= 0.5

    def decide(reading, min_score: float, fallback: float | None):
        strict = ExtractiveAnswerer(
            answerer.reader,
            answerer.sentences,
            min_score=min_score,
            no_answer_model=answerer.no_answer_model,
            fallback_score=fallback,
        )
        return strict.decide(reading)

    assert decide(dead, 0.0, 0.0).meta["kind"] == "extractive"  # a sure enough span is the answer
    sentence = decide(dead, 0.999, dead.sentence_score)  # the span is unsure: its best sentence answers
    assert sentence.meta["kind"] == "sentence" and "Donald Trump" in sentence.data
    assert sentence.meta["evidence"] == sentence.data and sentence.score == dead.sentence_score
    assert decide(dead, 0.999, dead.sentence_score + 0.01) is None  # the sentence matches too little
    assert decide(dead, 0.999, None) is None and decide(dead, 0.999, 1.0) is None  # no fallback: "I don't know"
    assert decide(france, 0.999, 0.0) is None  # no-answer wins: never a sentence in its place


def test_no_answer_weighs_the_span_and_how_well_its_sentences_match(reader_engine):
    answerer = reader_engine.pipeline.get_component("answerer")
    model = answerer.no_answer_model
    assert model.chance_of(0.6, 0.8) > model.chance_of(0.6, 0.3)
    assert model.chance_of(0.9, 0.5) > model.chance_of(0.2, 0.5)
    assert model.chance_of(0.6, 0.6, in_best_sentence=True) > model.chance_of(0.6, 0.6, in_best_sentence=False)
    # a passage that holds more of the question's terms is likelier to hold the answer (the fitted
    # weight of the best sentence's lead is small, of either sign from one fit to the next)
    assert model.chance_of(0.6, 0.6, coverage=1.0) > model.chance_of(0.6, 0.6, coverage=0.3)
    for question, holds_answer in (("Who declared the talks dead?", True), ("What is the capital of France?", False)):
        run = reader_engine.pipeline.run(
            {"followup": {"question": question, "history": []}}, include_outputs_from={"ranker"}
        )
        reading = answerer.read(question, run["ranker"]["documents"])
        assert reading.span is not None and 0.0 < reading.sentence_score <= 1.0
        if holds_answer:  # "President Donald Trump" lies in the sentence that matches the question best
            assert reading.in_best_sentence
        assert (answerer.answerable(reading) >= 0.5) is holds_answer, (question, reading)


def test_the_reader_reads_neighbouring_best_sentences_as_one_window(reader_engine):
    answerer = reader_engine.pipeline.get_component("answerer")
    run = reader_engine.pipeline.run(
        {"followup": {"question": "Who declared the talks dead?", "history": []}}, include_outputs_from={"ranker"}
    )
    passage = max(run["ranker"]["documents"], key=lambda d: len(d.meta["sentences"].spans))
    spans, text = passage.meta["sentences"].spans, passage.content
    assert len(spans) >= 7

    def windows(*sentences: int) -> list[tuple[int, int]]:
        found = answerer._windows([(1.0, passage, k) for k in sentences])
        for window in found:
            assert window.meta["passage"] is passage
            assert text[window.meta["offset"] :].startswith(window.content)
        return [(w.meta["offset"], w.meta["offset"] + len(w.content)) for w in found]

    # sentences 3 and 4, one before and one after each: sentences 2 to 5 in one read
    assert windows(3, 4) == [(spans[2][0], spans[5][1])]
    assert windows(4, 3) == windows(3, 4)
    assert windows(3, 5) == [(spans[2][0], spans[6][1])]  # touching windows are one read too
    assert windows(1, 5) == [(spans[0][0], spans[2][1]), (spans[4][0], spans[6][1])]  # apart: two reads
    assert windows(0) == [(spans[0][0], spans[1][1])]  # no sentence before the first
    twin = Document(id="twin", content=passage.content, meta=passage.meta)  # an overlapping passage of the article
    assert len(answerer._windows([(1.0, passage, 3), (0.99, twin, 3)])) == 1  # its same text is read once


def test_a_second_window_is_read_only_when_its_sentence_comes_close_to_the_best(reader_engine):
    answerer = reader_engine.pipeline.get_component("answerer")
    assert answerer.margin == reader_engine.settings.answer.reader_window_margin == 0.05
    run = reader_engine.pipeline.run(
        {"followup": {"question": "Who declared the talks dead?", "history": []}}, include_outputs_from={"ranker"}
    )
    passage = max(run["ranker"]["documents"], key=lambda d: len(d.meta["sentences"].spans))
    spans = passage.meta["sentences"].spans

    def reads(second_score: float) -> list[int]:
        return [w.meta["offset"] for w in answerer._windows([(0.8, passage, 1), (second_score, passage, 5)])]

    assert reads(0.76) == [spans[0][0], spans[4][0]]  # within 0.05 of the best: both windows
    assert reads(0.74) == [spans[0][0]]  # further behind: the best sentence's window alone
    wide = ExtractiveAnswerer(answerer.reader, answerer.sentences, windows=2, margin=1.0)
    assert len(wide._windows([(0.8, passage, 1), (0.1, passage, 5)])) == 2


def test_calibration_files_of_older_readers_and_damaged_ones_are_read_as_far_as_they_go(tmp_path):
    fitted = {"reader": 0.4, "sentence": 5.9, "bias": -3.0}
    (tmp_path / "calibration.json").write_text(json.dumps({"min_reader_score": 0.42, "no_answer_model": fitted}))
    older = reader_calibration(tmp_path)
    assert older == {
        "min_reader_score": 0.42,
        "no_answer_model": (0.4, 5.9, -3.0, 0.0, 0.0, 0.0, 0.0),
    }  # no later weights
    for fallback, read in ((0.75, 0.75), (1, 1.0), (1.5, None), (-0.1, None), ("0.7", None), (None, None)):
        (tmp_path / "calibration.json").write_text(json.dumps({"fallback_sentence_score": fallback}))
        assert reader_calibration(tmp_path).get("fallback_sentence_score") == read
    not_finite = '{"no_answer_model": {"reader": 1, "sentence": NaN, "bias": 0}}'
    for damaged in ("[]", '{"no_answer_model": "yes"}', not_finite):
        (tmp_path / "calibration.json").write_text(damaged)
        assert "no_answer_model" not in reader_calibration(tmp_path)


def test_onnx_and_haystack_torch_readers_give_the_same_answers():
    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    documents = [
        Document(content="President Donald Trump declared the talks “dead” in September. The Taliban waited."),
        Document(content="Mike Pompeo hailed an important breakthrough on Thursday, speaking in Munich."),
    ]
    calibration = json.loads((SHIPPED / "calibration.json").read_text())["calibration_factor"]
    onnx = OnnxExtractiveReader(SHIPPED, _onnx_dir(), calibration_factor=calibration)
    torch_reader = TransformersExtractiveReader(model=str(SHIPPED), calibration_factor=calibration)
    torch_reader.warm_up()
    for question in ("Who declared the talks dead?", "When did Pompeo speak?", "What is the capital of France?"):
        ours = onnx.run(query=question, documents=documents, top_k=5)["answers"]
        theirs = torch_reader.run(query=question, documents=documents, top_k=5)["answers"]
        assert [a.data for a in ours] == [a.data for a in theirs]
        assert [a.score for a in ours] == pytest.approx([a.score for a in theirs], abs=1e-4)
        assert [a.document_offset for a in ours] == [a.document_offset for a in theirs]


def test_distinct_candidates_keep_the_best_answer_and_find_other_answers_rather_than_its_neighbours():
    documents = [
        Document(
            content="The rover was built in Turin and tested in Stevenage. It touched down on Thursday in a "
            "region called Oxia Planum, and its controllers in Darmstadt cheered."
        )
    ]
    calibration = json.loads((SHIPPED / "calibration.json").read_text())["calibration_factor"]
    plain = OnnxExtractiveReader(SHIPPED, _onnx_dir(), calibration_factor=calibration)
    distinct = OnnxExtractiveReader(SHIPPED, _onnx_dir(), calibration_factor=calibration, distinct=True)
    for question in ("Where did the rover land?", "Where was the rover built?"):
        haystack = plain.run(query=question, documents=documents, top_k=5, no_answer=False)["answers"]
        ours = distinct.run(query=question, documents=documents, top_k=5, no_answer=False)["answers"]
        assert (ours[0].data, ours[0].document_offset) == (haystack[0].data, haystack[0].document_offset)
        assert ours[0].score == pytest.approx(haystack[0].score)
        spans = [(a.document_offset.start, a.document_offset.end) for a in ours]
        assert all(e1 <= s2 or e2 <= s1 for i, (s1, e1) in enumerate(spans) for s2, e2 in spans[i + 1 :])
        assert len(ours) == 5 > len(haystack)  # Haystack's 20 candidates hug the best span
        assert [a.score for a in ours] == sorted((a.score for a in ours), reverse=True)


def test_int8_reader_keeps_the_float_readers_answers(seed_index_dir, reader_engine):
    engine = QAEngine(make_settings(seed_index_dir, reader=DEFAULT_READER_MODEL, models={"reader_quantize": True}))
    engine.warm_up()
    assert engine._reader.quantize
    for question in ("Who declared the talks dead?", "What is the capital of France?"):
        answer, expected = engine.ask(question), reader_engine.ask(question)
        assert (answer.kind, answer.text, answer.evidence) == (expected.kind, expected.text, expected.evidence)


def test_the_models_thread_pools_sleep_between_runs(reader_engine):
    # A question runs the embedding model, then the reader: a pool left spinning would hold the
    # cores the other one needs.
    sessions = [reader_engine._onnx_embedder._session, reader_engine._reader._session]
    for session in sessions:
        options = session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def _onnx_dir():
    from retrieval.settings import load_settings

    return load_settings().models.onnx_dir


def test_torch_backend_loads_the_shipped_folder_through_haystack(seed_index_dir, reader_engine):
    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    engine = QAEngine(make_settings(seed_index_dir, reader=DEFAULT_READER_MODEL, models={"reader_backend": "torch"}))
    answer = engine.ask("Who declared the talks dead?")
    assert isinstance(engine._reader, TransformersExtractiveReader)
    expected = reader_engine.ask("Who declared the talks dead?")
    assert (answer.kind, answer.text, answer.evidence) == (expected.kind, expected.text, expected.evidence)
    assert answer.score == pytest.approx(expected.score, abs=1e-3)


def test_engine_loads_any_reader_from_a_local_folder(seed_index_dir, tiny_reader_dir):
    engine = QAEngine(make_settings(seed_index_dir, reader=str(tiny_reader_dir)))
    answer = engine.ask("Who declared the talks dead?")
    assert engine.answer_kind == "extractive"
    assert engine.reader_notice is None
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
    forced = ExtractiveAnswerer(answerer.reader, answerer.sentences, windows=2, min_score=0.0, no_answer=False)
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


def test_missing_reader_falls_back_to_sentences_and_tells_only_the_operator(seed_index_dir):
    engine = QAEngine(make_settings(seed_index_dir))  # a reader name that is on no disk
    answer = engine.ask("Who declared the talks dead?")
    assert answer.kind == "sentence"
    assert "Donald Trump" in answer.text
    assert answer.notices == ()  # nothing for the asker (Telegram shows notices)
    assert "not available offline" in engine.reader_notice


def test_damaged_shipped_reader_falls_back_to_sentences_with_a_notice(seed_index_dir, tmp_path):
    damaged = tmp_path / "qabot-reader"
    shutil.copytree(SHIPPED, damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])
    engine = QAEngine(make_settings(seed_index_dir, reader=str(damaged)))
    answer = engine.ask("Who declared the talks dead?")
    assert answer.kind == "sentence"
    assert "Donald Trump" in answer.text
    assert "could not be loaded" in engine.reader_notice
    assert "\n" not in engine.reader_notice


def test_unloadable_reader_falls_back_to_sentences_with_a_notice(seed_index_dir, tmp_path):
    broken = tmp_path / "broken-reader"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert"}')
    engine = QAEngine(make_settings(seed_index_dir, reader=str(broken)))
    answer = engine.ask("Who declared the talks dead?")
    assert answer.kind == "sentence"
    assert "could not be loaded" in engine.reader_notice


def test_a_reader_folder_that_is_no_qa_model_is_an_error_naming_the_setting(seed_index_dir):
    embedding_folder = resolve_model("sentence-transformers/all-MiniLM-L6-v2").path
    engine = QAEngine(make_settings(seed_index_dir, reader=str(embedding_folder)))
    with pytest.raises(ConfigError, match="models.reader"):
        engine.ask("Who declared the talks dead?")


def test_cli_names_a_missing_reader_once_on_stderr_and_in_json(seed_index_dir):
    env = {"QABOT_INDEX_DIR": str(seed_index_dir), "QABOT_MODELS_READER": "qabot-tests/none"}
    result = run_qabot("ask", "Who declared the talks dead?", env=env)
    assert result.returncode == 0
    assert result.stderr.count("not available offline") == 1
    result = run_qabot("ask", "--json", "Who declared the talks dead?", env=env)
    data = json.loads(result.stdout)
    assert data["kind"] == "sentence"
    assert any("not available offline" in notice for notice in data["notices"])


def test_cli_answers_with_the_shipped_reader_by_default(seed_index_dir, tmp_path):
    env = {"QABOT_INDEX_DIR": str(seed_index_dir), "QABOT_DATA_DIR": str(tmp_path / "data")}
    result = run_qabot("ask", "--json", "Who declared the talks dead?", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "extractive"
    assert "Donald Trump" in data["answer"]
    assert data["notices"] == []
    assert data["evidence"][data["answer_start"] : data["answer_end"]] == data["answer"]


def test_model_card_carries_the_measured_figures():
    card = (SHIPPED / "README.md").read_text()
    calibration = json.loads((SHIPPED / "calibration.json").read_text())
    assert "CC BY 4.0" in card and "Apache-2.0" in card and "COVID-QA" in card
    assert str(calibration["calibration_factor"]) in card
    assert f"{calibration['dev_gold_paragraph']['f1']:.3f}" in card
    assert calibration["date"] in card
