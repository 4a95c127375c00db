"""Every file qabot opens goes through the guarded reader of `retrieval/files.py`: feeds.json,
question sets, a reader's calibration.json, the config file, secret files. A symlink to /dev/zero
or a FIFO is refused at once (never a hang), sizes are bounded, and each refusal is one line.

CLI cases run the real `qabot` script; a FIFO is never opened for writing, so a reader that
waited on one would hang until the subprocess timeout.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from retrieval.errors import QabotError
from retrieval.models.resolve import reader_calibration
from retrieval.secrets import read_token
from tests.conftest import MISSING_READER, ROOT, make_settings, one_line_error, run_qabot

QUICK = 60  # seconds: a command that waited on a FIFO would run into this


@pytest.fixture()
def user_env(tmp_path: Path) -> dict[str, str]:
    return {
        "QABOT_MODELS_READER": MISSING_READER,
        "QABOT_DATA_DIR": str(tmp_path / "data"),
        "QABOT_INDEX_DIR": str(tmp_path / "index"),
    }


def special_file(kind: str, path: Path) -> Path:
    """A symlink to /dev/zero or a FIFO at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "zero":
        path.symlink_to("/dev/zero")
    else:
        os.mkfifo(path)
    return path


REASONS = {"zero": "a character device, not a regular file", "fifo": "a FIFO (named pipe), not a regular file"}


# --- feeds.json ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zero", "fifo"])
@pytest.mark.parametrize("command", [["feeds", "list"], ["refresh"]])
def test_feeds_json_that_is_a_device_or_a_fifo_is_one_line(tmp_path, user_env, kind, command):
    feeds = special_file(kind, tmp_path / "data" / "feeds.json")
    result = run_qabot(*command, env=user_env, timeout=QUICK)
    assert result.returncode == 2
    assert one_line_error(result) == f"error: cannot read {feeds} ({REASONS[kind]}): fix or delete it"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[]", "expected a JSON object, found a list"),
        ("null", "expected a JSON object, found null"),
        ('{"added": 5}', "'added' must be a list of URLs"),
        ('{"added": ["https://a.example/rss", 7]}', "'added' must be a list of URLs"),
        ('{"validators": []}', "'validators' must be an object of objects, by URL"),
        ('{"entries": {"https://a.example/1": {"source": ["x"]}}}', "'entries' must hold text in source, stamp"),
        ('{"failed": {"https://a.example/1": {"failures": "many"}}}', "'failed' must hold a whole number"),
        ('{"added": [', "not valid JSON (line 1, column 12: Expecting value)"),
        ("\udcff", "not UTF-8 text (byte 0 cannot be decoded)"),
    ],
)
def test_feeds_json_of_the_wrong_shape_is_the_same_one_line_as_garbage(tmp_path, user_env, content, reason):
    feeds = tmp_path / "data" / "feeds.json"
    feeds.parent.mkdir(parents=True)
    feeds.write_bytes(content.encode("utf-8", "surrogateescape"))
    result = run_qabot("feeds", "list", env=user_env, timeout=QUICK)
    assert result.returncode == 2
    error = one_line_error(result)
    assert error.startswith(f"error: cannot read {feeds} ({reason}") and error.endswith("): fix or delete it")


def test_a_bigger_feeds_json_than_allowed_is_refused(tmp_path, monkeypatch):
    from retrieval.ingest import feed_state

    monkeypatch.setattr(feed_state, "MAX_STATE_BYTES", 100)
    settings = make_settings(tmp_path / "index")
    feeds = feed_state.FeedList(settings)
    feeds.path.parent.mkdir(parents=True)
    feeds.path.write_text(json.dumps({"added": [f"https://example.org/{n}" for n in range(20)]}))
    with pytest.raises(QabotError, match=r"\(bigger than 100 bytes\): fix or delete it"):
        feeds.urls()


# --- Question sets -------------------------------------------------------------------------------


def test_qabot_eval_of_dev_zero_and_of_a_fifo_is_one_line_at_once(tmp_path, user_env):
    fifo = special_file("fifo", tmp_path / "questions.jsonl")
    for path, reason in [("/dev/zero", REASONS["zero"]), (str(fifo), REASONS["fifo"])]:
        result = run_qabot("eval", path, env=user_env, timeout=QUICK)
        assert result.returncode == 2
        assert one_line_error(result) == f"error: cannot read question set {path}: {reason}"


def test_a_question_set_line_longer_than_the_limit_is_refused_with_its_number(tmp_path, user_env):
    record = json.dumps({"question": "Who opened the bridge?", "answers": ["the mayor"]})
    long_record = json.dumps({"question": "x" * 1_100_000, "answers": []})
    questions = tmp_path / "questions.jsonl"
    questions.write_text(f"{record}\n{record.replace('bridge', 'road')}\n{long_record}\n{record}\n")
    result = run_qabot("eval", str(questions), env=user_env, timeout=QUICK)
    assert result.returncode == 2
    assert one_line_error(result) == f"error: {questions}:3: line longer than 1,000,000 characters"


def test_a_question_set_that_is_not_utf8_names_the_line(tmp_path):
    from bot.evaluation.questionsets import QuestionSetError, load_question_set

    questions = tmp_path / "questions.csv"
    questions.write_bytes(b"question,answer\nWho opened the bridge?,the mayor\nWho \xff?,nobody\n")
    with pytest.raises(QuestionSetError, match=r"questions\.csv:3: not UTF-8 text \(byte 53 cannot be decoded\)"):
        load_question_set(questions)


# --- A reader's calibration.json -----------------------------------------------------------------

SHIPPED_READER = ROOT / "models" / "qabot-reader"


def reader_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "reader"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not valid JSON (line 1, column 2"),
        (b"[0.1, 0.5]", "not a JSON object"),
        (b"\xff\xfe", "not UTF-8 text"),
        (b'{"calibration_factor": "high", "min_reader_score": 0.4}', "cannot use calibration_factor"),
        (b'{"no_answer_model": {"reader": 1e9, "sentence": 1, "bias": 0}}', "cannot use no_answer_model"),
    ],
)
def test_a_broken_calibration_file_is_a_one_line_warning_naming_it(tmp_path, caplog, content, problem):
    calibration = reader_folder(tmp_path) / "calibration.json"
    calibration.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="retrieval.models.resolve"):
        found = reader_calibration(calibration.parent)
    [record] = caplog.records
    message = record.getMessage()
    assert "\n" not in message
    assert f"calibration file {calibration} is broken ({problem}" in message and "fix or delete it" in message
    assert found == ({"min_reader_score": 0.4} if b"min_reader_score" in content else {})


@pytest.mark.parametrize("kind", ["zero", "fifo"])
def test_a_calibration_file_that_is_a_device_or_a_fifo_is_refused_with_a_warning(tmp_path, caplog, kind):
    calibration = special_file(kind, reader_folder(tmp_path) / "calibration.json")
    with caplog.at_level(logging.WARNING, logger="retrieval.models.resolve"):
        assert reader_calibration(calibration.parent) == {}
    assert REASONS[kind] in caplog.text and str(calibration) in caplog.text


def test_no_calibration_file_and_the_shipped_one_are_silent(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="retrieval.models.resolve"):
        assert reader_calibration(reader_folder(tmp_path)) == {}
        assert reader_calibration(SHIPPED_READER)["calibration_factor"] > 0
    assert caplog.records == []


# --- Secret files --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zero", "fifo"])
def test_a_token_file_that_is_a_device_or_a_fifo_is_one_line_at_once(tmp_path, kind):
    token_file = special_file(kind, tmp_path / "token")
    settings = make_settings(tmp_path / "index", telegram={"token_file": token_file})
    with pytest.raises(QabotError, match=f"cannot read the Telegram token file {token_file}") as caught:
        read_token(settings, environ={})
    assert REASONS[kind] in str(caught.value) and caught.value.exit_code == 2
