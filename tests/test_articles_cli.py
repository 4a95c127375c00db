"""Articles as news through the real `qabot` script: a folder of articles in every format and date
style gets a date for every dated file and answers from PDF and Word files with their title and
date; skipped files are named with their reason before and in the summary; exit codes 1 when some
named inputs gave nothing, 2 when none did; `qabot refresh` without feeds says how to add one; and
`make chat` keeps its demo index inside the project, apart from the user's own index.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from retrieval.engine import QAEngine
from retrieval.stores.embedded.index_folder import load_index
from tests.conftest import MISSING_READER, NEWS, QABOT, ROOT, make_settings, one_line_error, run_qabot
from tests.office_files import write_docx, write_pdf, write_scan_pdf

OSLO_TITLE = "Storm closes Oslo airport for nine hours"
OSLO = "Oslo airport was closed for nine hours on Monday after a storm brought winds of 120 kilometres an hour."
NAIROBI_TITLE = "Kenya opens a solar plant near Garissa"
NAIROBI = "Kenya opened a 50-megawatt solar plant near Garissa on Friday, the largest in East Africa."


@pytest.fixture()
def user_env(tmp_path: Path) -> dict[str, str]:
    return {"QABOT_MODELS_READER": MISSING_READER, "QABOT_DATA_DIR": str(tmp_path / "data")}


def _news(name: str) -> tuple[str, str]:
    """A news article of the test corpus as (headline, text)."""
    title, _, body = (NEWS / f"{name}.txt").read_text(encoding="utf-8").partition("\n")
    return title.strip(), body.strip()


def _html(name: str, head: str = "", top: str = "") -> str:
    title, body = _news(name)
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
    page = f"<h1>{title}</h1>{top}{paragraphs}"
    return f"<html><head><title>{title}</title>{head}</head><body><article>{page}</article></body></html>"


def _json_ld(date: str) -> str:
    data = {"@context": "https://schema.org", "@type": "NewsArticle", "datePublished": date}
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


def news_folder(folder: Path) -> dict[str, str]:
    """Ten articles in every format and date style; returns each file's expected date ("" undated)."""
    folder.mkdir()
    dates = {}

    def write(name: str, text: str, date: str) -> None:
        (folder / name).write_text(text, encoding="utf-8")
        dates[name] = date

    meta = '<meta property="article:published_time" content="2026-05-03T09:30:00+02:00">'
    write("emilia-floods.html", _html("emilia-floods", meta, "<p>3 May 2026</p>"), "2026-05-03")
    write("mars-rover.html", _html("mars-rover", _json_ld("2026-04-02T18:00:00Z")), "2026-04-02")
    write(
        "candidates.html",
        _html("candidates-chess", top='<p><time datetime="2026-04-19">19 April</time></p>'),
        "2026-04-19",
    )
    title, body = _news("malaria-vaccine")
    write(
        "malaria.md",
        f"---\ntitle: {title}\ndate: 2026-04-27\nauthor: Ngozi Okafor\n---\n# {title}\n\n{body}\n",
        "2026-04-27",
    )
    title, body = _news("wrexham-football")
    write("wrexham.md", f"# {title}\n\n*Published 2026-04-25, Wrexham*\n\n{body}\n", "2026-04-25")
    title, body = _news("asml-jobs")
    write("asml.txt", f"{title}\nPublished: 22 April 2026\nBy Pieter de Vries\n\n{body}\n", "2026-04-22")
    title, body = _news("tagus-bridge")
    write("tagus.txt", f"{title}\n\nLISBON, March 14, 2026 — {body}\n", "2026-03-14")
    write_pdf(folder / "oslo.pdf", [OSLO_TITLE, "Date: 2026-03-30", "", OSLO, "Flights resumed in the evening."])
    dates["oslo.pdf"] = "2026-03-30"
    write_docx(
        folder / "garissa.docx", [NAIROBI_TITLE, f"NAIROBI, March 28, 2026 — {NAIROBI}", "It cost 120 million dollars."]
    )
    dates["garissa.docx"] = "2026-03-28"
    write("ghent.txt", "Ghent library reopens\n\nThe city library of Ghent reopened after two years of work.\n", "")
    return dates


def test_a_folder_of_articles_in_every_format_is_dated_and_answered(tmp_path, user_env):
    dates = news_folder(tmp_path / "news")
    index_dir = tmp_path / "index"

    result = run_qabot("index", "--index", str(index_dir), str(tmp_path / "news"), env=user_env)

    assert result.returncode == 0, result.stderr
    assert "Indexed 10 files" in result.stdout and "Skipped" not in result.stdout
    sources = json.loads(run_qabot("sources", "--json", "--index", str(index_dir), env=user_env).stdout)["sources"]
    assert {Path(source).name: entry.get("published", "") for source, entry in sources.items()} == dates
    titles = [entry["title"] for entry in sources.values()]
    passages = load_index(index_dir, QAEngine(make_settings(index_dir)).embedding_id).passages
    for passage in passages:  # no headline, date line or dateline inside any evidence sentence
        for sentence in passage.sentences():
            assert not any(title in sentence for title in titles), sentence
            assert not any(word in sentence for word in ("LISBON,", "NAIROBI,", "Published", "Date:", "3 May 2026"))
    for question, title, date, evidence in [
        ("How long was Oslo airport closed after the storm?", OSLO_TITLE, "2026-03-30", OSLO),
        ("How big is the solar plant Kenya opened near Garissa?", NAIROBI_TITLE, "2026-03-28", NAIROBI),
    ]:
        answer = run_qabot("ask", "--json", "--index", str(index_dir), question, env=user_env)
        assert answer.returncode == 0, answer.stderr
        found = json.loads(answer.stdout)
        assert (found["title"], found["published"], found["evidence"]) == (title, date, evidence)


def _qabot_merged(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`qabot ARGS` with stdout and stderr in one stream, in the order they were written."""
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [str(QABOT), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env, timeout=180
    )


def test_skipped_files_are_named_with_their_reason_and_the_exit_code_says_what_failed(tmp_path, user_env):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "ghent.txt").write_text("Ghent library reopens\n\nThe city library of Ghent reopened on Monday.\n")
    write_pdf(folder / "oslo.pdf", [OSLO_TITLE, OSLO])
    write_docx(folder / "garissa.docx", [NAIROBI_TITLE, NAIROBI])
    (folder / "notes.xyz").write_text("shopping list")
    write_scan_pdf(folder / "scan.pdf")
    locked = write_pdf(tmp_path / "locked.pdf", [OSLO_TITLE, OSLO], password="secret")
    (tmp_path / "empty").mkdir()
    index = ["--index", str(tmp_path / "index")]

    folder_only = run_qabot("index", *index, str(folder), env=user_env)
    assert folder_only.returncode == 0, folder_only.stderr  # the folder named gave articles
    assert "Indexed 3 files" in folder_only.stdout
    assert "Skipped 2: notes.xyz (unsupported type), scan.pdf (no text" in folder_only.stdout
    assert "skipped " + str(folder / "scan.pdf") + ": no text" in folder_only.stderr

    some_failed = _qabot_merged("index", *index, str(folder), str(locked), str(tmp_path / "empty"), env=user_env)
    assert some_failed.returncode == 1, some_failed.stdout
    output = some_failed.stdout
    for reason in (
        f"{locked}: encrypted PDF: needs a password",
        f"nothing indexed from {tmp_path / 'empty'}: no file in it",
    ):
        assert reason in output and output.index(reason) < output.index("Indexed 0 files (3 unchanged"), output
    assert "Skipped 3: notes.xyz (unsupported type), scan.pdf (no text" in output and "locked.pdf (encrypted" in output

    nothing = run_qabot("index", *index, str(folder / "scan.pdf"), str(folder / "notes.xyz"), env=user_env)
    assert nothing.returncode == 2
    assert "nothing to index" in one_line_error(nothing)
    assert "scan.pdf: no text" in nothing.stderr and "notes.xyz: unsupported type" in nothing.stderr

    as_json = json.loads(run_qabot("index", "--json", *index, str(folder), str(locked), env=user_env).stdout)
    assert as_json["inputs_failed"] == [{"path": str(locked), "reason": "encrypted PDF: needs a password"}]


def test_refresh_without_feeds_says_how_to_add_one(tmp_path, user_env):
    result = run_qabot("refresh", "--index", str(tmp_path / "index"), env=user_env)
    assert result.returncode == 2
    assert "no feeds to read: add one with `qabot feeds add URL`" in one_line_error(result)


def _chat_recipe() -> list[str]:
    """The command `make chat` runs, as words, with $(BIN) the virtualenv's bin folder."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(number for number, line in enumerate(lines) if line.startswith("chat:"))
    recipe = [line.strip().lstrip("@") for line in lines[start + 1 :] if line.startswith("\t")][:1]
    assert recipe, "the Makefile's chat target runs no command"
    return shlex.split(recipe[0].replace("$(BIN)", str(QABOT.parent)))


def test_make_chat_keeps_its_demo_index_in_the_project_and_leaves_the_users_index_alone(tmp_path):
    assert ".qabot/" in (ROOT / ".gitignore").read_text().splitlines()
    home, project = tmp_path / "home", tmp_path / "project"  # the recipe runs in the project's folder
    home.mkdir()
    project.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("XDG_DATA", "QABOT_"))}
    env.update(HOME=str(home), QABOT_MODELS_READER=MISSING_READER)

    result = subprocess.run(
        _chat_recipe(),
        input="Who declared the talks dead?\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert "Trump" in result.stdout
    assert any((project / ".qabot" / "demo-index").glob("gen-*")), "the demo index is not in .qabot/demo-index"
    assert not (home / ".local" / "share" / "qabot").exists()
