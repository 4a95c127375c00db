"""End to end: the seed question set through the real engine, the report, and `eval_command`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from bot.evaluation.command import eval_command
from bot.evaluation.metrics import QUESTION_TYPES
from bot.evaluation.questionsets import load_question_set
from bot.evaluation.report import summarize, write_report
from bot.evaluation.runner import run_questions
from retrieval.errors import QabotError
from tests.conftest import SEEDS, make_settings

# Floors for the sentence answer (no reader model): evidence_hit is 0.91 on the answerable seed
# questions, follow-ups included. No-answer accuracy is the weak side of sentence answers
# (questions about the article's subject that it does not answer still match a sentence).
EVIDENCE_HIT_FLOOR = 0.9
NO_ANSWER_FLOOR = 0.4
# Floors with the shipped reader (the default): it answers with spans and abstains. Measured:
# evidence_hit 0.91 (31 of 34; it abstains on 1 answerable question), no-answer accuracy 0.71
# (5 of 7; the other two answered as not sure), exact match 0.82 on the answerable questions.
READER_EVIDENCE_HIT_FLOOR = 0.88
READER_NO_ANSWER_FLOOR = 0.7
READER_EXACT_MATCH_FLOOR = 0.79
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def seed_summary(seed_engine):
    question_set = load_question_set(SEEDS / "questions.jsonl")
    return summarize(run_questions(seed_engine, question_set), SEEDS / "questions.jsonl")


@pytest.fixture(scope="module")
def reader_summary(reader_engine):
    question_set = load_question_set(SEEDS / "questions.jsonl")
    return summarize(run_questions(reader_engine, question_set), SEEDS / "questions.jsonl")


def records_by_id(summary):
    return {record["id"]: record for record in summary["questions"]}


def test_seed_questions_are_answered_from_the_article(seed_summary):
    assert seed_summary["n_answerable"] >= 25
    assert seed_summary["evidence_hit"] >= EVIDENCE_HIT_FLOOR
    assert set(seed_summary["answer_kinds"]) <= {"sentence", "none"}


def test_follow_ups_are_asked_with_their_conversation(seed_summary):
    records = records_by_id(seed_summary)
    # "When did he do that?" means nothing alone; with its conversation it finds Trump's sentence.
    assert records["when-dead"]["follow_up_of"] == "who-dead"
    assert records["when-dead"]["evidence_hit"]
    assert "September" in records["when-dead"]["evidence"]
    assert records["why-overthrew"]["evidence_hit"]


def test_questions_about_other_things_are_not_answered(seed_summary):
    records = records_by_id(seed_summary)
    for question_id in ("none-capital", "none-world-cup", "none-recipe"):
        assert records[question_id]["abstained"], records[question_id]
        assert records[question_id]["exact_match"] == 1.0
    assert seed_summary["no_answer_accuracy"] >= NO_ANSWER_FLOOR


def test_summary_has_every_promised_key(seed_summary):
    for key in (
        "n_questions",
        "exact_match",
        "f1",
        "evidence_hit",
        "no_answer_accuracy",
        "recall_at_1",
        "recall_at_5",
        "mrr",
        "latency_ms_p50",
        "latency_ms_p95",
        "by_type",
        "questions",
    ):
        assert key in seed_summary
    assert set(seed_summary["by_type"]) == set(QUESTION_TYPES)
    record = seed_summary["questions"][0]
    assert {"prediction", "gold", "exact_match", "f1", "evidence_hit", "retrieved_titles"} <= set(record)
    assert record["retrieved_titles"][0] == "Mike Pompeo hails important breakthrough in US-Taliban talks"
    json.dumps(seed_summary)  # JSON-ready as it is


def test_report_lists_failures_and_draws_plots(seed_summary, tmp_path):
    report = write_report(seed_summary, tmp_path / "report")
    text = report.read_text(encoding="utf-8")
    failed = [record for record in seed_summary["questions"] if record["failure"]]
    assert f"## Failures ({len(failed)})" in text
    assert all(record["question"] in text for record in failed)
    for plot in ("metrics_by_type.png", "latency.png"):
        assert f"]({plot})" in text
        assert (tmp_path / "report" / plot).read_bytes().startswith(PNG_MAGIC)


def test_the_shipped_reader_answers_the_seed_questions_with_spans_and_abstains(reader_summary):
    assert reader_summary["answer_kinds"].get("extractive", 0) >= 20
    assert set(reader_summary["answer_kinds"]) <= {"extractive", "none"}
    assert reader_summary["evidence_hit"] >= READER_EVIDENCE_HIT_FLOOR
    assert reader_summary["no_answer_accuracy"] >= READER_NO_ANSWER_FLOOR
    assert reader_summary["has_answer_exact_match"] >= READER_EXACT_MATCH_FLOOR
    records = records_by_id(reader_summary)
    assert records["when-dead"]["prediction"] == "September"


def test_report_shows_the_readers_confidence_against_its_accuracy(reader_summary, tmp_path):
    table = reader_summary["reliability"]
    assert sum(row["answers"] for row in table) == reader_summary["answer_kinds"]["extractive"]
    assert all(0 <= row["right"] <= 1 and row["from"] <= row["confidence"] <= row["to"] for row in table)
    report = write_report(reader_summary, tmp_path / "report")
    assert "## Confidence" in report.read_text(encoding="utf-8")
    assert (tmp_path / "report" / "reliability.png").read_bytes().startswith(PNG_MAGIC)


def squad_file(path: Path) -> Path:
    article = (SEEDS / "000_2702eb2bcdd00dd6.txt").read_text(encoding="utf-8")
    paragraphs = [p for p in article.split("\n\n") if len(p.split()) > 15]
    dead = next(p for p in paragraphs if "declared the talks" in p)
    troops = next(p for p in paragraphs if "Sixteen US troops" in p)
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "Pompeo",
                "paragraphs": [
                    {
                        "context": dead,
                        "qas": [
                            {
                                "id": "dead",
                                "question": "Who declared the talks dead?",
                                "answers": [{"text": "Donald Trump"}],
                            }
                        ],
                    },
                    {
                        "context": troops,
                        "qas": [
                            {
                                "id": "troops",
                                "question": "How many US troops have been killed this year?",
                                "answers": [{"text": "Sixteen"}],
                            },
                            {
                                "id": "capital",
                                "question": "What is the capital of France?",
                                "answers": [],
                                "is_impossible": True,
                            },
                        ],
                    },
                ],
            }
        ],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_eval_command_indexes_squad_paragraphs_and_writes_json(tmp_path):
    console = Console(file=io.StringIO(), width=100)
    json_out = tmp_path / "out" / "eval.json"
    settings = make_settings(tmp_path / "index")
    summary = eval_command(settings, squad_file(tmp_path / "set.json"), [], json_out, None, console)
    written = json.loads(json_out.read_text(encoding="utf-8"))
    assert written["n_questions"] == summary["n_questions"] == 3
    assert written["recall_at_1"] == 1.0 and written["n_with_gold_paragraph"] == 2
    assert written["evidence_hit"] == 1.0
    assert [r["gold_source"] for r in written["questions"]] == ["Pompeo#0", "Pompeo#1", "Pompeo#1"]
    assert "all" in console.file.getvalue()


def test_eval_command_answers_from_the_given_corpus(copy_of_seed_index, tmp_path):
    questions = tmp_path / "set.csv"
    questions.write_text("question,answer\nWho declared the talks dead?,Donald Trump\n", encoding="utf-8")
    settings = make_settings(copy_of_seed_index)
    console = Console(file=io.StringIO())
    summary = eval_command(settings, questions, [SEEDS], None, tmp_path / "report", console)
    assert summary["evidence_hit"] == 1.0
    assert summary["recall_at_1"] is None  # no gold paragraph in a CSV set
    assert (tmp_path / "report" / "report.md").is_file()


def test_eval_command_rejects_a_malformed_question_set(tmp_path):
    questions = tmp_path / "set.jsonl"
    questions.write_text('{"question": "Who declared the talks dead?", "answers": "Trump"}\n', encoding="utf-8")
    with pytest.raises(QabotError, match=r"set\.jsonl:1: 'answers' must be a list") as caught:
        eval_command(make_settings(tmp_path / "index"), questions, [], None, None, Console(file=io.StringIO()))
    assert caught.value.exit_code == 2
