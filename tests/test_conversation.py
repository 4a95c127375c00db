"""Conversation as people have it, through the real engine over the news articles: follow-ups stay on
their story, small talk and other languages get the bot's own reply, yes/no questions, typos."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from retrieval.answering.answer import Turn
from retrieval.answering.decide import names_only
from retrieval.answering.followup import is_follow_up
from tests.conftest import NEWS, ROOT, run_qabot

BRIDGE = "Lisbon opens its new bridge over the Tagus"
VACCINE = "Nigeria starts giving children a new malaria vaccine"


def talk(engine, *questions):
    """Ask `questions` in one conversation; the answers in order."""
    history, answers = [], []
    for question in questions:
        answer = engine.ask(question, history)
        history.append(Turn(question, answer))
        answers.append(answer)
    return answers


# ----------------------------------------------------------------- follow-ups


@pytest.mark.parametrize(
    "question",
    [
        "How much did it cost?",
        "Who is its boss?",
        "How many?",
        "And the toll?",
        "When did he lose?",
        "Why did that happen?",
        "Where is its headquarters?",
        "What did they say?",
        "In which minute?",
    ],
)
def test_questions_that_lean_on_the_previous_turn_are_follow_ups(question):
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    [
        "Why did ASML say it would cut jobs?",
        "Who opened the bridge?",
        "Who is Fouquet?",
        "Where is Faenza?",
        "Did Wrexham beat Coventry?",
        "Will engineers working on new machines lose their jobs?",
        "How much did the R21 vaccine cost?",
    ],
)
def test_questions_that_say_what_they_ask_about_are_new_questions(question):
    assert not is_follow_up(question)


def test_a_follow_up_is_answered_from_the_article_of_the_previous_answer(news_engine):
    first, cost = talk(news_engine, "Which vaccine did Nigeria start giving children?", "How much does it cost?")
    assert first.title == VACCINE
    assert cost.title == VACCINE and "3 dollars" in cost.text  # not the bridge's 1.9 billion euros
    assert not any(notice.startswith("Moved") for notice in cost.notices)


def test_a_chain_of_follow_ups_stays_on_its_story(news_engine):
    answers = talk(news_engine, "Which rover landed on Mars?", "How deep can its drill reach?", "When did it land?")
    assert [a.title for a in answers] == ["European rover lands safely on Mars"] * 3
    assert "two metres" in answers[1].text and "Thursday" in answers[2].text


def test_the_story_article_is_read_even_when_retrieval_brings_none_of_its_passages(news_engine):
    story = news_engine.pipeline.get_component("story")
    source = next(s for s, entry in news_engine.store.sources().items() if entry.get("title") == BRIDGE)
    passages = story.run(documents=[], story=source)["documents"]
    assert passages and {p.meta["source"] for p in passages} == {source}
    assert story.run(documents=passages, story="")["documents"] == passages


def test_a_follow_up_the_story_cannot_answer_moves_and_says_so(news_engine):
    answers = talk(news_engine, "Who opened the new bridge in Lisbon?", "How many jobs will it cut?")
    moved = answers[1]
    assert moved.known and moved.title != BRIDGE
    assert f"Moved to another article: {moved.title}" in moved.notices


@pytest.mark.parametrize(
    ("span", "referent", "repeats"),
    [
        ("US-led forces", "US-led forces", True),
        ("Khalilzad", "Zalmay Khalilzad", True),
        ("Trump", "President Donald Trump", True),
        ("Defence Secretary", "Defence Secretary Mark Esper", False),  # "What is his job?"
        ("Thursday", "Mike Pompeo", False),
        ("Mark Esper", "", False),  # no earlier answer
    ],
)
def test_a_span_that_only_names_the_earlier_answer_again_is_told_apart(span, referent, repeats):
    assert names_only(span, referent) is repeats


def test_a_follow_up_is_not_answered_with_what_its_pronoun_stands_for(reader_engine):
    first, why = talk(
        reader_engine, "Who overthrew the Taliban government in Afghanistan in 2001?", "Why did they do that?"
    )
    assert first.text == "US-led forces"
    assert why.known and "US-led" not in why.text and "safe haven" in why.evidence
    alone = reader_engine.ask("Why did they do that? (Who overthrew the Taliban government in Afghanistan in 2001?)")
    assert alone.text == "US-led forces"  # what the reader reads without the conversation


def test_a_follow_up_with_no_earlier_question_is_a_new_question(news_engine):
    answer = news_engine.ask("How much did it cost?", [])
    assert answer.search_query == "How much did it cost?"
    assert not any(notice.startswith("Moved") for notice in answer.notices)


def test_only_the_last_turns_of_a_long_history_are_read(news_engine):
    old = news_engine.ask("Who won the 2026 Candidates Tournament?")
    recent = talk(news_engine, "Which vaccine did Nigeria start giving children?")
    history = [Turn("Who won the 2026 Candidates Tournament?", old)] * 999 + [
        Turn("Which vaccine did Nigeria start giving children?", recent[0])
    ]
    start = time.perf_counter()
    answer = news_engine.ask("How much does it cost?", history)
    assert time.perf_counter() - start < 5
    assert answer.title == VACCINE and "3 dollars" in answer.text


def test_the_conversation_set_meets_the_follow_up_targets_through_qabot_eval(tmp_path):
    questions = NEWS / "conversations.jsonl"
    records = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines()]
    assert sum(1 for r in records if r.get("follow_up_of")) >= 14
    out = tmp_path / "summary.json"
    env = {"QABOT_INDEX_DIR": str(tmp_path / "index"), "QABOT_DATA_DIR": str(tmp_path / "data")}
    result = run_qabot("eval", str(questions), "--corpus", str(NEWS), "--json-out", str(out), env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Follow-ups: " in result.stdout
    figures = json.loads(out.read_text(encoding="utf-8"))["follow_ups"]
    assert figures["n"] == figures["n_with_story"] >= 14
    assert figures["from_story"] >= 0.9
    assert figures["left_story_wrongly"] <= 0.05
    assert figures["f1"] >= 0.8


# ----------------------------------------------------------------- small talk

SMALL_TALK = [
    "Hi",
    "hello",
    "Hey there!",
    "Good morning",
    "good evening, bot",
    "How are you?",
    "What's up?",
    "Hiya",
    "Thanks",
    "Thank you!",
    "thanks a lot",
    "Thank you very much",
    "cheers",
    "Many thanks!",
    "ok thanks",
    "Great, thanks!",
    "Who are you?",
    "What are you?",
    "What is your name?",
    "Are you a bot?",
    "What can you do?",
    "What can I ask you?",
    "How does this work?",
    "help",
    "Help me",
    "Can you help me?",
    "Hi, what can you do?",
    "Bye",
    "Goodbye!",
    "See you later",
]
OPENING_LIKE_SMALL_TALK = [
    ("Hi, who opened the bridge?", BRIDGE),
    ("Hello! How many jobs will ASML cut?", "ASML to cut 1,700 jobs as chip orders slow"),
    ("Thanks! Which town was hit hardest by the floods in Emilia-Romagna?", None),
    ("Hey, who won the 2026 Candidates Tournament?", None),
    ("Good morning, which rover landed on Mars?", None),
    ("Thank you. Who scored Wrexham's winning goal against Coventry?", None),
    ("Hi there, what is the toll for cars on the new Tagus bridge?", BRIDGE),
    ("Can you tell me which vaccine Nigeria started giving children?", VACCINE),
    ("Hello, how many vehicles a day will use the new Tagus bridge?", BRIDGE),
    ("Do you know how deep the water was in Faenza?", None),
]


def test_small_talk_gets_a_reply_never_an_answer_from_the_articles(news_engine):
    assert len(SMALL_TALK) == 30
    for message in SMALL_TALK:
        answer = news_engine.ask(message)
        assert answer.kind == "reply" and answer.text and not answer.passages, message
        assert answer.confidence == "none"


def test_greetings_and_help_come_with_a_hint(news_engine):
    assert "Try:" in news_engine.ask("Hello").text
    assert "follow-up" in news_engine.ask("help").text.lower()


def test_questions_that_open_like_small_talk_are_answered(news_engine):
    for question, title in OPENING_LIKE_SMALL_TALK:
        answer = news_engine.ask(question)
        assert answer.known, question
        assert answer.question == question
        if title:
            assert answer.title == title, question


# ----------------------------------------------------------------- yes/no


def test_a_plain_yes(news_engine):
    answer = news_engine.ask("Did Wrexham beat Coventry?")
    assert answer.text == "Yes"
    assert "Wrexham beat Coventry City 2-1" in answer.evidence


def test_a_plain_no_needs_a_negation_in_the_text(news_engine):
    answer = news_engine.ask("Will engineers working on new machines lose their jobs?")
    assert answer.text == "No"
    assert "no engineers" in answer.evidence


def test_a_yes_no_question_the_text_does_not_settle_gets_the_sentence(news_engine):
    answer = news_engine.ask("Did Wrexham lose?")
    assert answer.kind == "sentence"
    assert answer.text == answer.evidence and answer.text not in {"Yes", "No"}


# ----------------------------------------------------------------- typos


def test_misspelt_question_words_are_corrected_against_the_index(news_engine):
    typo = news_engine.ask("Hwo much did the brige cost?")
    clean = news_engine.ask("How much did the bridge cost?")
    assert typo.search_query == "How much did the bridge cost?"
    assert typo.passages and typo.passages[0].title == BRIDGE
    assert (typo.text, typo.kind) == (clean.text, clean.kind)


def test_right_words_the_articles_do_not_use_are_left_alone(news_engine):
    speller = news_engine.pipeline.get_component("followup").speller
    assert speller("How many people live in Faenza?") == "How many people live in Faenza?"
    assert speller("Who is Fouqet?") == "Who is Fouquet?"


# ----------------------------------------------------------------- other languages


@pytest.mark.parametrize(
    "message",
    [
        "Wer hat die Brücke eröffnet?",
        "¿Quién abrió el puente?",
        "Quanto custou a ponte?",
        "Кто открыл мост?",
        "谁开通了这座桥？",
        "Who открыл the мост?",
        "🙂👍",
        "🌉❓",
    ],
)
def test_messages_that_are_no_english_question_get_one_line_in_english(news_engine, message):
    answer = news_engine.ask(message)
    assert answer.kind == "reply" and "\n" not in answer.text
    assert "English" in answer.text or "words" in answer.text


def test_english_questions_with_foreign_names_are_answered(news_engine):
    assert news_engine.ask("Who is Luís Montenegro?").kind != "reply"
    assert news_engine.ask("What happened in Forlì?").kind != "reply"


def test_the_language_detector_is_not_loaded_for_english_questions(tmp_path):
    script = (
        "import sys\n"
        "from retrieval.answering.language import language_reply\n"
        "assert language_reply('Who opened the bridge in Lisbon?', lambda w: True) is None\n"
        "assert language_reply('Who is Luís Montenegro?', lambda w: True) is None\n"
        "assert 'langdetect' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)
