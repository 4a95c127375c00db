"""/start's example questions: made from the articles, and kept only when the engine is sure of them."""

from __future__ import annotations

from typing import Any

import pytest

from bot.examples import ExampleQuestions, candidate_question, checked_examples
from tests.telegram_standin import WatchedEngine


@pytest.mark.parametrize(
    ("sentence", "question"),
    [
        (
            "Prime minister Luís Montenegro opened the new Tagus bridge in Lisbon on Saturday, the third crossing.",
            "Who opened the new Tagus bridge in Lisbon on Saturday?",
        ),
        ("Heavy rain caused floods on Sunday.", "What caused floods on Sunday?"),
        ("Nigeria starts giving children a new malaria vaccine", "Who starts giving children a new malaria vaccine?"),
        ("He said no engineers would lose their jobs.", None),  # a pronoun is no subject to ask about
        ("ASML to cut 1,700 jobs as chip orders slow", None),  # no verb after the subject
        ("👍🎉", None),
        ("", None),
    ],
)
def test_candidate_questions_are_made_from_a_subject_and_its_verb(sentence, question):
    assert candidate_question(sentence) == question


def test_examples_are_answered_surely_and_kept_until_the_index_changes(news_engine: Any):
    examples = checked_examples(news_engine, 3)
    assert examples
    for example in examples:
        assert news_engine.ask(example).confidence == "sure"
    watched = WatchedEngine(news_engine)
    cache = ExampleQuestions(watched, 3)
    assert cache.get() == examples
    asked = len(watched.asked)
    assert cache.get() == examples and len(watched.asked) == asked  # from the cache


def test_no_examples_when_no_answer_is_sure(seed_engine: Any):
    assert checked_examples(seed_engine, 3) == []  # without a reader, answers are never sure
