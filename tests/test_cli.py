"""The `qabot` console script, run as a user runs it: exit codes, one-line errors, JSON, chat."""

from __future__ import annotations

import json
import re

import pytest

from bot.words import plural
from tests.conftest import MISSING_READER, SEEDS, one_line_error, run_qabot

COMMANDS = [
    [],
    ["index"],
    ["ask"],
    ["chat"],
    ["bot"],
    ["eval"],
    ["refresh"],
    ["sources"],
    ["remove"],
    ["models"],
    ["models", "list"],
    ["models", "pull"],
    ["feeds"],
    ["feeds", "add"],
    ["feeds", "list"],
    ["feeds", "remove"],
    ["store"],
    ["store", "copy"],
]
# What help showed before it named values in words: Python types, and a range as a formula.
TYPE_MARKERS = re.compile(r"<(bool|int|float|str|path|list|tuple|text|file|choice|uuid|datetime)\b|\[x[<>]", re.I)
ERROR_LINE = re.compile(r"^error: [^\n]+: [^\n]+$")


@pytest.fixture()
def user_env(tmp_path):
    return {"QABOT_MODELS_READER": MISSING_READER, "QABOT_DATA_DIR": str(tmp_path / "data")}


def test_help_lists_every_command():
    result = run_qabot("--help")
    assert result.returncode == 0
    for command in ("index", "ask", "chat", "bot", "eval", "models"):
        assert command in result.stdout


def test_every_command_of_the_app_is_checked_below():
    import typer

    import bot.cli

    def paths(command, prefix):
        yield prefix
        for name, sub in getattr(command, "commands", {}).items():
            yield from paths(sub, [*prefix, name])

    assert sorted(paths(typer.main.get_command(bot.cli.app), [])) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda words: " ".join(words) or "qabot")
def test_h_and_help_show_the_same_help_in_words(command):
    short, long = run_qabot(*command, "-h"), run_qabot(*command, "--help")
    assert short.returncode == long.returncode == 0, short.stderr + long.stderr
    assert short.stdout == long.stdout and not short.stderr
    help_text = short.stdout
    assert f"Usage: qabot {' '.join(command)}".rstrip() in help_text
    assert not TYPE_MARKERS.search(help_text), TYPE_MARKERS.search(help_text)
    assert re.search(r"--help\s+-h\s+Show this message", help_text)  # a flag: no value after it
    summary = help_text.split("Usage:", 1)[1].splitlines()[2].strip()
    assert len(summary.split()) >= 4, f"the help should say what `qabot {' '.join(command)}` does"


def test_help_names_values_in_words():
    help_text = run_qabot("eval", "-h").stdout
    for shown in ("QUESTIONS", "--corpus", "PATH", "--top-k", "N ", "--index", "FOLDER", "--reader", "MODEL"):
        assert shown in help_text
    assert re.search(r"--json\s+Print one JSON", run_qabot("ask", "-h").stdout)
    assert "[TARGET...]" in run_qabot("index", "-h").stdout


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    result = run_qabot("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"qabot {version('qabot')}"


def test_plural():
    assert plural(1, "passage") == "1 passage"
    assert plural(2, "passage") == "2 passages"
    assert plural(0, "new passage") == "0 new passages"
    assert plural(3, "entry", "entries") == "3 entries"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["index", "--bogus"], "no such option: --bogus: see `qabot index -h`"),
        (["ask"], "missing argument 'QUESTION': see `qabot ask -h`"),
        (["nope"], "no such command 'nope': see `qabot -h`"),
        (["models", "nope"], "no such command 'nope': see `qabot models -h`"),
        (["bot", "--port", "0"], "see `qabot bot -h`"),
        (["index"], "nothing to index: give files, folders or web addresses, or --feeds"),
        (["ask", "  "], "empty question: ask something"),
        (["store", "copy", "--to", "qdrant"], "cannot copy the index to qdrant: only --to milvus is possible"),
    ],
)
def test_a_wrong_command_line_is_one_error_line_and_exit_code_2(arguments, expected, user_env):
    result = run_qabot(*arguments, env=user_env)
    assert result.returncode == 2
    line = one_line_error(result)
    assert ERROR_LINE.match(line) and expected in line, line
    assert not result.stdout


def test_a_command_group_without_a_command_shows_its_help_and_exits_2():
    result = run_qabot("feeds")
    assert result.returncode == 2 and "Usage: qabot feeds" in result.stdout and not result.stderr


def test_ask_json_prints_one_object(seed_index_dir, user_env):
    result = run_qabot("ask", "--json", "--index", str(seed_index_dir), "Who declared the talks dead?", env=user_env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "sentence" and "Donald Trump" in data["answer"]
    assert {"question", "answer", "score", "kind", "evidence", "title", "passages"} <= set(data)


def test_ask_prints_answer_title_and_confidence(seed_index_dir, user_env):
    result = run_qabot("ask", "--index", str(seed_index_dir), "Who declared the talks dead?", env=user_env)
    assert result.returncode == 0
    assert "Donald Trump" in result.stdout and "Mike Pompeo hails" in result.stdout
    assert "Confidence" in result.stdout
    assert "qabot models pull" in result.stderr


def test_blank_question_exits_non_zero_with_one_line(seed_index_dir, user_env):
    result = run_qabot("ask", "--index", str(seed_index_dir), "   ", env=user_env)
    assert result.returncode != 0
    assert "empty question" in one_line_error(result)


def test_missing_index_folder_exits_2(tmp_path, user_env):
    result = run_qabot("ask", "--index", str(tmp_path / "nowhere"), "Who declared the talks dead?", env=user_env)
    assert result.returncode == 2
    assert "qabot index" in one_line_error(result)


def test_index_skips_bad_files_with_a_warning_and_missing_path_exits_2(tmp_path, user_env):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "story.txt").write_text((SEEDS / "000_2702eb2bcdd00dd6.txt").read_text())
    (folder / "broken.txt").write_bytes(b"\xff\xfe\x00\x00garbage")
    result = run_qabot("index", "--index", str(tmp_path / "index"), str(folder), env=user_env)
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr and "broken.txt" in result.stderr
    assert "Indexed 1 file (" in result.stdout
    missing = run_qabot("index", "--index", str(tmp_path / "index"), str(tmp_path / "nope"), env=user_env)
    assert missing.returncode == 2
    assert "no such file" in one_line_error(missing)


def test_piped_chat_answers_follow_ups_and_commands(seed_index_dir, user_env):
    script = "Who declared the talks dead?\nWhen did he do that?\n/sources\n/help\n/quit\nnever read\n"
    result = run_qabot("chat", "--index", str(seed_index_dir), input=script, env=user_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Donald Trump" in out
    assert "September" in out  # the answer to the follow-up
    assert "Article: Mike Pompeo hails important breakthrough" in out and "/quit" in out
    assert "score" not in out and "000_2702eb2bcdd00dd6" not in out
    assert all(line == line.rstrip() for line in out.splitlines())  # piped: no padding
    assert "Traceback" not in result.stderr


def test_chat_indexes_the_corpus_on_first_use(tmp_path, user_env):
    result = run_qabot("chat", "--index", str(tmp_path / "fresh"), input="Who declared the talks dead?\n", env=user_env)
    assert result.returncode == 0, result.stderr
    assert "index is empty" in result.stderr
    assert "Donald Trump" in result.stdout


def test_invalid_setting_names_the_key(seed_index_dir, user_env):
    env = {**user_env, "QABOT_RETRIEVAL_TOP_K": "zero"}
    result = run_qabot("ask", "--index", str(seed_index_dir), "Who?", env=env)
    assert result.returncode == 2
    assert "retrieval.top_k" in one_line_error(result)


def test_models_pull_offline_says_what_to_do(user_env):
    result = run_qabot("models", "pull", env={**user_env, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert "HF_HUB_OFFLINE" in one_line_error(result)


def test_remove_takes_what_sources_shows_a_file_name_a_title_or_a_short_id(tmp_path, user_env):
    from retrieval.ingest.indexing import short_id

    folder = tmp_path / "articles"
    folder.mkdir()
    for name, title in (("bridge.txt", "Bridge opens"), ("rover.txt", "Rover lands"), ("flood.txt", "Floods force")):
        (folder / name).write_text(f"{title}\n\n{title} today, officials said. Crowds came to watch.\n")
    index = str(tmp_path / "index")
    assert run_qabot("index", str(folder), "--index", index, env=user_env).returncode == 0
    rover = str((folder / "rover.txt").resolve())
    for name in ("bridge.txt", short_id(str((folder / "flood.txt").resolve()))):
        removed = run_qabot("remove", name, "--index", index, env=user_env)
        assert removed.returncode == 0, removed.stderr
    listed = run_qabot("sources", "--index", index, "--json", env=user_env)
    assert list(json.loads(listed.stdout)["sources"]) == [rover]
    missing = run_qabot("remove", "flood.txt", "--index", index, env=user_env)
    assert missing.returncode == 2 and "not in the index: flood.txt" in missing.stderr
    last = run_qabot("remove", "rover lands", "--index", index, env=user_env)  # by its title: the last one
    assert last.returncode == 2 and "would remove every article" in last.stderr and "Traceback" not in last.stderr
