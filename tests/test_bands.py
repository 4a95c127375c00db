"""Choosing the band thresholds on dev-set results (`training.bands`): the replayed band, the choice
under a limit on wrong sure answers, and what it writes."""

from __future__ import annotations

import json

import pytest

from training.bands import choose, frontier, grid, main, replay


def record(score: float, coverage: float, right: bool, gold: bool = True, kind: str = "extractive") -> dict:
    return {
        "gold": ["x"] if gold else [],
        "kind": kind,
        "confidence": "unsure",
        "score": score,
        "coverage": coverage,
        "f1": 1.0 if right else 0.0,
    }


# Confident answers are right, doubtful ones wrong; one confident answer with little of the question
# in its passage is wrong, and one answer to a question without an answer is wrong.
RECORDS = [
    record(0.95, 0.9, True),
    record(0.9, 0.8, True),
    record(0.9, 0.1, False),
    record(0.8, 0.9, True),
    record(0.7, 0.9, False),
    record(0.6, 0.9, False),
    record(0.93, 0.9, False, gold=False),
    record(0.99, 1.0, True, kind="sentence"),  # a sentence answer is never sure
]


def test_the_replayed_band_counts_sure_answers_of_answerable_questions_and_the_wrong_ones():
    assert replay(RECORDS, 0.85, 0.0) == pytest.approx((3 / 7, 2 / 4))
    assert replay(RECORDS, 0.85, 0.5) == pytest.approx((2 / 7, 1 / 3))
    assert replay(RECORDS, 0.99, 0.0) == (0.0, 0.0)


def test_the_choice_keeps_wrong_sure_answers_under_the_limit_on_every_file():
    other = [record(0.9, 0.9, True), record(0.82, 0.9, False), record(0.75, 0.9, True)]
    choices = grid({"a": RECORDS, "b": other})
    chosen = choose(choices, 0.34)
    assert chosen is not None and chosen.most_wrong <= 0.34
    assert all(c.least_sure <= chosen.least_sure for c in choices if c.most_wrong <= 0.34)
    assert choose(choices, 0.0) is None  # every pair that makes both files sure has a wrong one
    rows = frontier(grid({"a": RECORDS}))
    assert rows and [r.most_wrong for r in rows] == sorted(r.most_wrong for r in rows)


def test_the_tool_writes_the_choice_into_the_readers_calibration(tmp_path, capsys):
    results = tmp_path / "dev.json"
    results.write_text(json.dumps({"questions": RECORDS}))
    model = tmp_path / "reader"
    model.mkdir()
    (model / "calibration.json").write_text(json.dumps({"min_reader_score": 0.3, "sure_model": [1, 1, 1]}))
    assert main([str(results), "--max-wrong", "0.34", "--model", str(model), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    calibration = json.loads((model / "calibration.json").read_text())
    assert calibration["sure_confidence"] == printed["chosen"]["confidence"] >= 0.8
    assert calibration["sure_coverage"] == printed["chosen"]["coverage"] >= 0.2
    assert "sure_model" not in calibration and calibration["min_reader_score"] == 0.3


def test_an_unreadable_results_file_is_one_clear_line(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main([str(broken)]) == 2
    assert "not a `qabot eval --json-out` file" in capsys.readouterr().err
