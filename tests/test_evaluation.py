"""Evaluation metrics and question-set formats, checked against hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.evaluation.metrics import (
    evidence_hit,
    exact_match,
    f1_score,
    normalize_answer,
    percentile,
    question_type,
    retrieval_scores,
)
from bot.evaluation.questionsets import QuestionSetError, load_question_set
from retrieval.errors import QabotError

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


# Metrics


def test_normalisation_drops_case_punctuation_articles_and_extra_spaces():
    assert normalize_answer("  The  U.S.-led Forces, an army! ") == "usled forces army"


def test_exact_match_after_normalisation():
    assert exact_match("The Taliban.", ["taliban"]) == 1.0
    assert exact_match("Taliban government", ["taliban"]) == 0.0


def test_exact_match_takes_the_best_gold_answer():
    assert exact_match("Pompeo", ["Mike Pompeo", "Pompeo"]) == 1.0


def test_empty_gold_rewards_only_abstention():
    assert exact_match("", []) == 1.0
    assert f1_score("", []) == 1.0
    assert exact_match("Kabul", []) == 0.0
    assert f1_score("Kabul", []) == 0.0


def test_abstaining_on_an_answerable_question_scores_zero():
    assert exact_match("", ["Kabul"]) == 0.0
    assert f1_score("", ["Kabul"]) == 0.0


def test_f1_counts_shared_tokens():
    # prediction "big dog" (articles dropped) vs gold "big cat": precision 1/2, recall 1/2
    assert f1_score("the big dog", ["big cat"]) == pytest.approx(0.5)
    # 1 of 3 predicted tokens, the only gold token: precision 1/3, recall 1 -> F1 0.5
    assert f1_score("in September 2019", ["September"]) == pytest.approx(0.5)


def test_f1_is_the_maximum_over_gold_answers():
    assert f1_score("Mark Esper", ["Defence Secretary Mark Esper", "Mark Esper"]) == 1.0
    # best of 2/3 precision... against "Defence Secretary Mark Esper": P=1, R=0.5 -> 0.667
    assert f1_score("Mark Esper", ["Defence Secretary Mark Esper", "Esper family"]) == pytest.approx(2 / 3)


def test_f1_counts_repeated_tokens_once_each():
    # common = min counts: "talks" once -> P=1/2, R=1 -> 2/3
    assert f1_score("talks talks", ["talks"]) == pytest.approx(2 / 3)


def test_evidence_hit_finds_the_gold_in_the_evidence_sentence():
    sentence = "President Donald Trump declared the talks “dead” in September."
    assert evidence_hit(sentence, sentence, ["dead"])
    assert evidence_hit("", sentence, ["in September"])


def test_evidence_hit_needs_whole_words():
    assert not evidence_hit("The deadline passed.", "The deadline passed.", ["dead"])
    assert not evidence_hit("Sixteen US troops", "Sixteen US troops", ["six"])


def test_evidence_hit_without_gold_is_false():
    assert not evidence_hit("anything", "anything", [])


def test_retrieval_scores_compare_passage_sources_with_the_gold_paragraph():
    scores = retrieval_scores(
        ["a#0", "a#1", "b#0"],
        [["a#0", "a#1"], ["a#0", "a#0", "a#1"], ["a#0", "a#1", "a#2", "a#3", "a#4", "b#0"]],
    )
    assert scores["recall_at_1"] == [1.0, 0.0, 0.0]
    assert scores["recall_at_5"] == [1.0, 1.0, 0.0]
    assert scores["mrr"] == pytest.approx([1.0, 1 / 3, 1 / 6])


def test_retrieval_scores_of_nothing_retrieved_are_zero():
    assert retrieval_scores(["a#0"], [[]]) == {"recall_at_1": [0.0], "recall_at_5": [0.0], "mrr": [0.0]}


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Who declared the talks dead?", "who"),
        ("Whose troops were killed?", "who"),
        ("What did Pompeo hail?", "what"),
        ("Which country is at war?", "what"),
        ("When did he do that?", "when"),
        ("In what year were the Taliban overthrown?", "when"),
        ("Where would the Afghans sit?", "where"),
        ("How many US troops have been killed?", "how many/much"),
        ("How much violence was reduced?", "how many/much"),
        ("Why did Trump pull out?", "why"),
        ("How did Pompeo describe the talks?", "other"),
        ("How did the man who spoke describe them?", "other"),
        ("Name the US Secretary of State.", "other"),
    ],
)
def test_question_type(question, kind):
    assert question_type(question) == kind


def test_percentiles_interpolate_like_numpy():
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == pytest.approx(25.0)
    assert percentile([10.0, 20.0, 30.0, 40.0], 95) == pytest.approx(38.5)
    assert percentile([], 50) is None


# Question-set formats


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def squad(paragraph_qas: list[dict], version: str = "v2.0") -> str:
    return json.dumps(
        {
            "version": version,
            "data": [
                {
                    "title": "Afghan_talks",
                    "paragraphs": [
                        {"context": "Trump declared the talks dead in September.", "qas": paragraph_qas},
                        {"context": "Sixteen US troops have been killed this year.", "qas": []},
                    ],
                }
            ],
        },
        indent=1,
    )


def test_squad_paragraphs_become_documents_with_stable_sources(tmp_path):
    path = write(
        tmp_path,
        "set.json",
        squad([{"id": "q1", "question": "Who declared the talks dead?", "answers": [{"text": "Trump"}]}]),
    )
    question_set = load_question_set(path)
    [question] = question_set.questions
    assert (question.id, question.answers, question.gold_source) == ("q1", ("Trump",), "Afghan_talks#0")
    assert [d.meta["source"] for d in question_set.documents] == ["Afghan_talks#0", "Afghan_talks#1"]
    assert question_set.documents[1].content == "Sixteen US troops have been killed this year."
    assert question_set.documents[1].meta["title"] == "Afghan_talks"


def test_squad_v2_impossible_questions_have_no_answer(tmp_path):
    qa = {
        "id": "q2",
        "question": "Who won the war?",
        "answers": [],
        "plausible_answers": [{"text": "Trump", "answer_start": 0}],
        "is_impossible": True,
    }
    [question] = load_question_set(write(tmp_path, "set.json", squad([qa]))).questions
    assert question.answers == ()
    assert not question.answerable


def test_squad_error_points_at_the_broken_question(tmp_path):
    qas = [
        {"id": "q1", "question": "Who declared the talks dead?", "answers": [{"text": "Trump"}]},
        {"id": "q2", "answers": [{"text": "September"}]},
    ]
    path = write(tmp_path, "set.json", squad(qas))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if '"q2"' in text) - 1
    with pytest.raises(QuestionSetError, match=rf"set\.json:{line}:\d+: missing or empty 'question'"):
        load_question_set(path)


def test_jsonl_reads_answers_ids_follow_ups_and_contexts(tmp_path):
    lines = [
        {"id": "a", "question": "Who declared the talks dead?", "answers": ["Donald Trump", "Trump"]},
        {"id": "b", "question": "When did he do that?", "answers": ["in September"], "follow_up_of": "a"},
        {"question": "Who leads the Taliban?", "answers": []},
        {"question": "How many troops died?", "answers": ["Sixteen"], "context": "Sixteen US troops died."},
    ]
    path = write(tmp_path, "set.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n\n")
    question_set = load_question_set(path)
    first, follow_up, unanswerable, with_context = question_set.questions
    assert first.answers == ("Donald Trump", "Trump")
    assert follow_up.follow_up_of == "a"
    assert unanswerable.answers == () and unanswerable.id == "line-3"
    assert with_context.gold_source == "set#0"
    assert [d.content for d in question_set.documents] == ["Sixteen US troops died."]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "Who?", "answers": ["x"]', "not valid JSON"),
        ('["Who?", ["x"]]', "expected an object"),
        ('{"question": "Who?"}', "missing 'answers'"),
        ('{"question": "Who?", "answers": "x"}', "'answers' must be a list"),
        ('{"question": "Who?", "answers": [""]}', "non-empty string"),
        ('{"question": "", "answers": ["x"]}', "missing or empty 'question'"),
        ('{"question": "Who?", "answers": [], "follow_up_of": "zz"}', "not the id of an earlier question"),
        ('{"id": "a", "question": "Who?", "answers": []}', "duplicate question id 'a'"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, line, message):
    good = '{"id": "a", "question": "Who declared the talks dead?", "answers": ["Trump"]}'
    path = write(tmp_path, "set.jsonl", f"{good}\n\n{line}\n")
    with pytest.raises(QuestionSetError, match=rf"set\.jsonl:3(:\d+)?: .*{message}") as caught:
        load_question_set(path)
    assert isinstance(caught.value, QabotError) and caught.value.exit_code == 2


def test_csv_reads_question_and_answer_columns(tmp_path):
    path = write(
        tmp_path,
        "set.csv",
        'question,answer\nWho declared the talks dead?,Trump\n"Where, exactly, is the war?",Afghanistan\n'
        "Who leads the Taliban?,\n",
    )
    questions = load_question_set(path).questions
    assert [q.answers for q in questions] == [("Trump",), ("Afghanistan",), ()]
    assert questions[1].question == "Where, exactly, is the war?"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("set.json", '{"data": [\n  {"title": "x",, }\n]}', r"set\.json:2:\d+: not valid JSON"),
        ("set.json", '{"version": "1.1"}', r"set\.json:1:1: expected a SQuAD file with a 'data' list"),
        ("set.csv", "Who declared the talks dead?,Trump\n", r"set\.csv:1: the header must name the columns"),
        ("set.csv", "question,answer\nWho?,Trump\nWhen?\n", r"set\.csv:3: expected 2 columns"),
        ("set.txt", "Who declared the talks dead?", r"set\.txt: unknown question-set format"),
        ("set.jsonl", "\n", r"set\.jsonl: no questions found"),
    ],
)
def test_malformed_files_are_errors_that_name_file_and_line(tmp_path, name, text, message):
    with pytest.raises(QuestionSetError, match=message):
        load_question_set(write(tmp_path, name, text))


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(QuestionSetError, match="cannot read question set"):
        load_question_set(tmp_path / "absent.jsonl")


# The hand-written question set for the seeds


def test_seed_question_set_covers_what_the_issue_asks():
    questions = load_question_set(SEEDS / "questions.jsonl").questions
    types = {question_type(q.question) for q in questions}
    assert len(questions) >= 30
    assert types == {"who", "what", "when", "where", "how many/much", "why", "other"}
    assert sum(not q.answerable for q in questions) >= 5
    assert sum(q.follow_up_of is not None for q in questions) >= 5


def test_seed_gold_answers_are_spans_of_the_article():
    article = "\n".join(path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt")))
    for question in load_question_set(SEEDS / "questions.jsonl").questions:
        for answer in question.answers:
            assert answer in article, (question.id, answer)


def test_the_report_gives_each_confidence_band_its_share_and_right_rate_and_the_sure_answers_that_were_wrong():
    from bot.evaluation.questionsets import EvalQuestion
    from bot.evaluation.report import bands_line, markdown_report, summarize
    from bot.evaluation.runner import QuestionResult
    from retrieval.answering.answer import Answer

    def result(number: int, gold: str, text: str, confidence: str) -> QuestionResult:
        kind = "none" if confidence == "none" else "extractive"
        question = EvalQuestion(id=str(number), question=f"Question {number}?", answers=(gold,) if gold else ())
        return QuestionResult(question, Answer(question.question, text, 0.5, kind, confidence=confidence), 1.0)

    results = [
        result(1, "Paris", "Paris", "sure"),
        result(2, "Rome", "Rome", "sure"),
        result(3, "Oslo", "Bergen", "sure"),  # sure and wrong
        result(4, "", "Madrid", "sure"),  # an answer to a question that has none: wrong
        result(5, "Lima", "Lima", "unsure"),
        result(6, "Quito", "", "none"),
    ]
    bands = summarize(results)["bands"]
    assert bands["sure"]["answers"] == 4 and bands["sure"]["right"] == pytest.approx(0.5)
    assert bands["sure_wrong"] == pytest.approx(0.5)
    assert bands["sure"]["share_of_answerable"] == pytest.approx(3 / 5)
    assert bands["unsure"]["right"] == 1.0 and bands["none"]["share_of_answerable"] == pytest.approx(1 / 5)
    summary = summarize(results)
    assert "sure answers wrong: 0.500" in bands_line(summary)
    assert "## Confidence bands" in markdown_report(summary)


def test_the_report_counts_right_answers_among_the_alternatives():
    from bot.evaluation.questionsets import EvalQuestion
    from bot.evaluation.report import bands_line, markdown_report, summarize
    from bot.evaluation.runner import QuestionResult
    from retrieval.answering.answer import Alternative, Answer

    def result(number: int, gold: str, text: str, *others: str) -> QuestionResult:
        question = EvalQuestion(id=str(number), question=f"Question {number}?", answers=(gold,) if gold else ())
        alternatives = tuple(Alternative(other, 0.1, f"{other}.", "t") for other in others)
        answer = Answer(question.question, text, 0.5, "extractive", confidence="unsure", alternatives=alternatives)
        return QuestionResult(question, answer, 1.0)

    summary = summarize(
        [
            result(1, "Paris", "Paris", "Lyon"),
            result(2, "Oslo", "Bergen", "Tromsø", "the Oslo"),  # missed; right among the alternatives
            result(3, "Lima", "Cusco"),  # missed, no alternatives
            result(4, "", "Madrid", "Seville"),  # no answer to find: not counted
        ]
    )
    more = summary["alternatives"]
    assert more["with_alternatives"] == pytest.approx(2 / 3)
    assert more["exact_match_top_3"] == pytest.approx(2 / 3)
    assert more["missed_but_in_alternatives"] == pytest.approx(1 / 2)
    assert summary["questions"][1]["alternatives"][1] == {"text": "the Oslo", "score": 0.1, "exact_match": 1.0}
    assert "EM of the answer or one of them 0.667" in bands_line(summary)
    assert "EM of the answer or one of them 0.667" in markdown_report(summary)


def test_decoding_replays_change_only_the_answers_their_rule_applies_to():
    from benchmarks.decoding_replays import answer_type, hyphen, replay

    def record(question, prediction, gold, evidence="", alternatives=()):
        others = [{"text": text, "score": score} for text, score in alternatives]
        return dict(
            question=question, prediction=prediction, gold=gold, evidence=evidence, score=0.5, alternatives=others
        )

    week = record("How long?", "week", ["week-long"], "A week-long truce held.")
    assert hyphen(week) == "week-long" and hyphen({**week, "prediction": "truce"}) == "truce"
    when = record("When did it open?", "long history", ["1897"], alternatives=[("film", 0.3), ("1897", 0.2)])
    assert answer_type(when) == "1897"
    assert answer_type({**when, "alternatives": [{"text": "1897", "score": 0.01}]}) == "long history"
    assert answer_type({**when, "question": "Who opened it?"}) == "long history"
    figures = replay([week, when, {**week, "gold": []}], hyphen)
    assert (figures["changed"], figures["better"], figures["worse"]) == (1, 1, 0)
    assert figures["em"] == [0.0, 0.5]
