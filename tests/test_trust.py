"""Answers people can trust: a confidence band on every answer, the next answers on request, and no
sure-looking answer about something the question did not ask. Real engine, shipped reader."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from bot.evaluation.metrics import f1_score
from retrieval.answering.rules import year_conflict
from retrieval.engine import QAEngine
from retrieval.models.resolve import DEFAULT_READER_MODEL, SHIPPED_MODELS_DIR, reader_calibration
from tests.conftest import MISSING_READER, make_settings, run_qabot

# Questions over tests/fixtures/news whose tempting answer is about another subject, place or year,
# with what the articles really say (None: no article says).
TEMPTING = {
    "How much did the new rover cost?": None,
    "How many people live in Faenza?": None,
    "What did ASML earn in 2024?": None,
    "Where did the rover land?": "Oxia Planum",
    "How much did the bridge cost?": "1.9 billion euros",
}


# The shipped reader still reads "Darmstadt" (where the engineers cheered) for where the rover
# landed, at 0.854: just under the sure band's 0.86, so it is shown as unsure. A misreading no band
# can see; a later reader or band that shows it as sure fails here.
@pytest.mark.parametrize("question", list(TEMPTING))
def test_a_question_about_another_subject_year_or_place_is_never_answered_as_sure_and_wrong(news_engine, question):
    answer = news_engine.ask(question)
    truth = TEMPTING[question]
    if answer.confidence == "sure":
        assert truth is not None and f1_score(answer.text, (truth,)) >= 0.5, answer


def test_every_answer_has_a_band_and_a_known_answer_is_sure_or_unsure(news_engine):
    sure = news_engine.ask("How many jobs will ASML cut?")
    assert sure.confidence == "sure" and "1,700" in sure.text
    assert sure.to_dict()["confidence"] == "sure" and sure.to_dict()["coverage"] == sure.coverage > 0
    unknown = news_engine.ask("What is the capital of Australia?")
    assert unknown.confidence == "none" and not unknown.known


def test_alternatives_are_distinct_answers_with_their_sentence_and_title(news_engine):
    answer = news_engine.ask("When did the talks collapse?")  # no such article: whatever is found, or none
    for question in ("Who scored for Wrexham?", "Which towns were flooded?", "How much did the bridge cost?"):
        answer = news_engine.ask(question)
        texts = [answer.text.lower(), *(a.text.lower() for a in answer.alternatives)]
        assert len(answer.alternatives) <= 2 and len(set(texts)) == len(texts)
        for alternative in answer.alternatives:
            assert alternative.text and alternative.text in alternative.evidence and alternative.title
            assert 0.01 <= alternative.score <= answer.score  # under 0.01 they are noise
    data = news_engine.ask("Who scored for Wrexham?").to_dict()
    assert isinstance(data["alternatives"], list)
    assert all({"text", "score", "evidence", "title"} <= set(a) for a in data["alternatives"])
    flooded = news_engine.ask("Which towns were flooded?")
    assert flooded.alternatives and flooded.alternatives[0].title == flooded.title


@pytest.mark.parametrize(
    "question", ["Montenegro", "what is the", "Who opened the new Tagus bridge? " + "Please tell me more. " * 100]
)
def test_a_one_word_all_function_word_or_overlong_question_is_never_sure(news_engine, question):
    answer = news_engine.ask(question)
    assert answer.confidence in {"unsure", "none"}


def test_a_contradicted_year_is_seen_only_when_the_sentence_names_other_years():
    assert year_conflict("What did ASML earn in 2024?", "ASML earned 7.6 billion euros in 2025.")
    assert not year_conflict("What did ASML earn in 2025?", "ASML earned 7.6 billion euros in 2025, up from 2024.")
    assert not year_conflict("What did ASML earn in 2024?", "ASML earned 7.6 billion euros.")  # no year: no conflict
    assert not year_conflict("What did ASML earn?", "ASML earned 7.6 billion euros in 2025.")


def test_the_passage_covers_less_of_a_question_about_a_subject_it_does_not_name(news_engine):
    answerer = news_engine.pipeline.get_component("answerer")

    def coverage(question: str) -> float:
        run = news_engine.pipeline.run(
            {"followup": {"question": question, "history": []}}, include_outputs_from={"ranker"}
        )
        reading = answerer.read(question, run["ranker"]["documents"])
        assert reading.span is not None
        return reading.coverage

    assert coverage("How much did the new rover cost?") < coverage("How much did the new bridge cost?")
    assert coverage("How many people live in Faenza?") < coverage("How many people left their homes in Faenza?")


def test_a_reader_without_fitted_bands_uses_the_defaults_and_tells_the_operator(news_index_dir, tmp_path, caplog):
    folder = tmp_path / "reader"
    shutil.copytree(SHIPPED_MODELS_DIR / DEFAULT_READER_MODEL, folder)
    calibration = json.loads((folder / "calibration.json").read_text())
    for key in ("sure_model", "sure_threshold", "sure_confidence", "sure_coverage"):
        calibration.pop(key, None)
    (folder / "calibration.json").write_text(json.dumps(calibration))
    assert "sure_model" not in reader_calibration(folder)
    engine = QAEngine(make_settings(news_index_dir, reader=str(folder), models={"onnx_dir": tmp_path / "onnx"}))
    with caplog.at_level(logging.WARNING, logger="retrieval.engine"):
        engine.warm_up()
    notes = [r.getMessage() for r in caplog.records if "confidence bands" in r.getMessage()]
    assert len(notes) == 1 and "\n" not in notes[0]
    assert engine.ask("How many jobs will ASML cut?").confidence == "sure"


def test_the_cli_shows_the_band_a_sure_answer_as_the_answer_an_unsure_one_as_the_closest_passage(
    news_index_dir, tmp_path
):
    env = {"QABOT_DATA_DIR": str(tmp_path / "data")}
    sure = run_qabot("ask", "How many jobs will ASML cut?", "--index", str(news_index_dir), env=env)
    assert sure.returncode == 0 and "Answer" in sure.stdout and "1,700" in sure.stdout
    assert ", sure (" in sure.stdout and "Not sure" not in sure.stdout
    sentences_only = {**env, "QABOT_MODELS_READER": MISSING_READER}
    unsure = run_qabot("ask", "How many jobs will ASML cut?", "--index", str(news_index_dir), env=sentences_only)
    assert unsure.returncode == 0 and "Not sure. The closest passage says:" in unsure.stdout
    assert "not sure" in unsure.stdout and "1,700" in unsure.stdout
    data = json.loads(
        run_qabot("ask", "Who scored for Wrexham?", "--index", str(news_index_dir), "--json", env=env).stdout
    )
    assert data["confidence"] in {"sure", "unsure"} and isinstance(data["alternatives"], list)


def test_the_chat_shows_the_other_answers_with_more_and_says_when_nothing_was_asked(news_index_dir, tmp_path):
    env = {"QABOT_DATA_DIR": str(tmp_path / "data")}
    script = "/more\nWhich towns were flooded?\n/more\nHow many jobs will ASML cut?\n/more\n"
    chat = run_qabot("chat", "--index", str(news_index_dir), input=script, env=env)
    assert chat.returncode == 0
    assert "Ask a question first; then /more" in chat.stdout.split("Confidence")[0]
    other = chat.stdout.split("Other answers to “Which towns were flooded?”:")[1]
    assert "Faenza" in other.split("Confidence")[0]
    assert "I found no other answer" in chat.stdout.split("1,700")[-1]
