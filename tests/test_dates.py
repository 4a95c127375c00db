"""Relative days in answers: "Thursday" in an article of 7 May 2026 is shown as Thursday (7 May 2026)
by the command line, the chat and Telegram, and `qabot ask --json` adds the day as date_meant."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from bot.dates import date_meant, with_date_meant
from bot.formatting import render_answer
from bot.telegram.format import format_answer
from retrieval.answering.answer import Answer
from retrieval.models.resolve import DEFAULT_READER_MODEL
from tests.conftest import run_qabot
from tests.telegram_standin import telegram_html_to_text

EVIDENCE = "The rover landed safely on Mars on Thursday, the agency said."


def thursday(published: str = "2026-05-07", confidence: str = "sure") -> Answer:
    start = EVIDENCE.index("Thursday")
    return Answer(
        question="When did the rover land?",
        text="Thursday",
        score=0.9,
        kind="extractive",
        evidence=EVIDENCE,
        title="Rover lands",
        published=published,
        answer_start=start,
        answer_end=start + len("Thursday"),
        confidence=confidence,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("text", "published", "shown"),
    [
        ("Thursday", "2026-05-07", "Thursday (7 May 2026)"),  # the article's own day
        ("on Tuesday", "2026-04-23", "on Tuesday (21 April 2026)"),
        ("Sunday", "2026-04-23", "Sunday (19 April 2026)"),
        ("on Friday.", "2026-04-23", "on Friday. (17 April 2026)"),
        ("last Thursday", "2026-04-23", "last Thursday (16 April 2026)"),
        ("Tuesday morning", "2026-04-23", "Tuesday morning (21 April 2026)"),
        ("yesterday", "2026-04-23", "yesterday (22 April 2026)"),
        ("this morning", "2026-04-23", "this morning (23 April 2026)"),
        ("last week", "2026-04-23", "last week (week of 13 April 2026)"),
        ("last month", "2026-04-23", "last month (March 2026)"),
        ("last month", "2026-01-10", "last month (December 2025)"),
        ("yesterday", "", "yesterday"),  # an undated article: nothing to count from
        ("Tuesday", "not a date", "Tuesday"),
        ("Donald Trump", "2026-04-23", "Donald Trump"),
        ("Tuesday's talks in Geneva", "2026-04-23", "Tuesday's talks in Geneva"),  # not a relative day
    ],
)
def test_a_relative_day_is_shown_with_the_date_it_means(text, published, shown):
    assert with_date_meant(text, published) == shown


def test_date_meant_is_a_single_day_only():
    assert date_meant("on Tuesday", "2026-04-23") == "2026-04-21"
    assert date_meant("yesterday", "2026-03-01") == "2026-02-28"
    assert date_meant("last week", "2026-04-23") == ""
    assert date_meant("Tuesday", "") == ""


def test_the_command_line_and_the_chat_show_the_date_meant_and_keep_the_span():
    console = Console(width=100, record=True)
    console.print(render_answer(thursday()))
    shown = console.export_text()
    assert "Thursday (7 May 2026)" in shown
    assert EVIDENCE in shown  # the evidence stays as written
    console = Console(width=100, record=True)
    console.print(render_answer(thursday(confidence="unsure")))
    assert "Thursday (7 May 2026)" in console.export_text()


def test_telegram_shows_the_date_meant_in_bold():
    [chunk] = format_answer(thursday())
    assert chunk.startswith("<b>Thursday (7 May 2026)</b>\n")
    assert EVIDENCE in telegram_html_to_text(chunk)
    [undated] = format_answer(thursday(published=""))
    assert undated.startswith("<b>Thursday</b>\n")


def test_qabot_ask_shows_and_prints_the_date_meant_of_a_dated_article(tmp_path):
    news = tmp_path / "news"
    news.mkdir()
    (news / "rover.txt").write_text(
        "European rover lands safely on Mars\nPublished: 2026-05-09\n\n"
        "The European rover Rosalind Franklin landed safely on Mars on Thursday, the European Space Agency said. "
        "It touched down in a region called Oxia Planum, a wide plain where water flowed billions of years ago.\n",
        encoding="utf-8",
    )
    env = {"QABOT_DATA_DIR": str(tmp_path / "data"), "QABOT_MODELS_READER": DEFAULT_READER_MODEL}
    index = str(tmp_path / "index")
    assert run_qabot("index", "--index", index, str(news), env=env).returncode == 0
    question = "When did the rover land on Mars?"
    result = run_qabot("ask", "--json", "--index", index, question, env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answer"] == "Thursday" and data["published"] == "2026-05-09"
    assert data["date_meant"] == "2026-05-07"
    shown = run_qabot("ask", "--index", index, question, env=env)
    assert "Thursday (7 May 2026)" in shown.stdout
    other = run_qabot("ask", "--json", "--index", index, "Where did the rover touch down?", env=env)
    assert "date_meant" not in json.loads(other.stdout)
