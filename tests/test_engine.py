"""The engine answers from the seed article, follows a conversation and knows when it does not know."""

from __future__ import annotations

import pytest

from retrieval.answering.answer import Turn
from retrieval.errors import InputError


def test_offline_sentence_answer_names_donald_trump(seed_engine):
    answer = seed_engine.ask("Who declared the talks dead?")
    assert answer.kind == "sentence"
    assert "Donald Trump" in answer.text
    assert answer.evidence == answer.text
    assert answer.title == "Mike Pompeo hails important breakthrough in US-Taliban talks"
    assert answer.source.endswith("000_2702eb2bcdd00dd6.txt")
    assert 0 < answer.score <= 1


def test_answer_comes_from_one_of_its_passages(seed_engine):
    answer = seed_engine.ask("How many US troops have been killed this year?")
    assert answer.passages, "an answer lists the passages it came from"
    assert any(answer.evidence in passage.text for passage in answer.passages)
    assert "Sixteen" in answer.text


def test_follow_up_question_keeps_the_conversation(seed_engine):
    first = seed_engine.ask("Who declared the talks dead?")
    follow_up = seed_engine.ask("When did he do that?", [Turn("Who declared the talks dead?", first)])
    assert "September" in follow_up.text
    assert "Who declared the talks dead?" in follow_up.search_query


def test_standalone_question_ignores_history(seed_engine):
    first = seed_engine.ask("Who declared the talks dead?")
    answer = seed_engine.ask("How many US troops have been killed this year?", [Turn(first.question, first)])
    assert answer.search_query == "How many US troops have been killed this year?"


def test_unrelated_question_gets_i_dont_know(seed_engine):
    answer = seed_engine.ask("What is the boiling point of liquid nitrogen in kelvin?")
    assert answer.kind == "none"
    assert answer.text == ""
    assert answer.passages, "even without an answer the retrieved passages are shown"


def test_reader_notice_is_for_the_operator_and_never_in_answers(seed_index_dir):
    from retrieval.engine import QAEngine
    from tests.conftest import make_settings

    engine = QAEngine(make_settings(seed_index_dir))
    first = engine.ask("Who declared the talks dead?")
    second = engine.ask("Who declared the talks dead?")
    assert "qabot models pull" in engine.reader_notice
    assert first.notices == () and second.notices == ()


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_blank_question_is_refused(seed_engine, question):
    with pytest.raises(InputError, match="empty question"):
        seed_engine.ask(question)


def test_very_long_question_is_cut_with_a_notice(seed_engine):
    question = "Who declared the talks dead? " + "word " * 20_000
    answer = seed_engine.ask(question[:100_000])
    assert len(answer.question) < 1000
    assert answer.question.startswith("Who declared the talks dead?")
    assert any("cut" in notice for notice in answer.notices)


def test_answer_serialises_to_the_json_fields(seed_engine):
    data = seed_engine.ask("Who declared the talks dead?").to_dict()
    for key in ("question", "answer", "score", "kind", "evidence", "title", "passages"):
        assert key in data
    assert data["kind"] == "sentence"
    assert {"id", "text", "title", "source", "score"} <= set(data["passages"][0])
