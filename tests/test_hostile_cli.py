"""Hostile files, disks, indexes and settings, against the real `qabot` script.

Odd file names, devices and FIFOs, a full disk, nothing to index, damaged index files and
settings of the wrong shape: each ends in a warning or in one `error:` line with exit code 2,
never in a traceback, an "unexpected" error or a hang.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.engine import QAEngine
from retrieval.errors import ConfigError
from retrieval.ingest.articles import ArticleLoader, SkippedFile
from retrieval.settings import load_settings
from retrieval.stores.embedded.index_folder import IndexDamagedError, current_generation, load_index
from tests.conftest import MISSING_READER, ROOT, SEED_ARTICLE, make_settings, one_line_error, run_qabot

QUESTION = "Who declared the talks dead?"
REBUILD = "qabot index --rebuild"
# `qabot bot` gets as far as loading the index, then could only fail to reach this address.
BOT_ENV = {"TELEGRAM_BOT_TOKEN": "123456:not-a-real-token", "QABOT_TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot"}


@pytest.fixture()
def user_env(tmp_path):
    return {"QABOT_MODELS_READER": MISSING_READER, "QABOT_DATA_DIR": str(tmp_path / "data")}


def _article(path: Path, city: str = "harbour") -> Path:
    path.write_text(f"News from the {city}\n\nThe {city} bridge reopened on Monday. Mayor Ana Lopez cut the ribbon.\n")
    return path


def _generations(index_dir: Path) -> list[str]:
    return sorted(folder.name for folder in index_dir.glob("gen-*"))


def _run_on_index(command: str, index_dir: Path, env: dict[str, str]):
    """`qabot COMMAND` on `index_dir` with what the command needs (a question, a file, a token)."""
    arguments = {"ask": [QUESTION], "index": [str(SEED_ARTICLE)]}.get(command, [])
    return run_qabot(command, "--index", str(index_dir), *arguments, input="", env={**env, **BOT_ENV})


def _clean(result) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "unexpected" not in output, output[-3000:]


# --- File names that are not UTF-8 ---------------------------------------------------------------


def test_file_names_that_are_not_utf8_are_indexed_or_skipped_under_an_escaped_name(tmp_path, user_env):
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(SEED_ARTICLE, folder / "good.txt")
    try:
        (folder / os.fsdecode(b"odd\xff\xfe.txt")).write_bytes(_article(tmp_path / "odd.txt").read_bytes())
        (folder / os.fsdecode(b"binary\xff.txt")).write_bytes(b"\x00\x01 not text")
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses file names that are not UTF-8")
    index_dir = tmp_path / os.fsdecode(b"index\xff")

    result = run_qabot("index", "--index", str(index_dir), str(folder), env=user_env)

    _clean(result)
    assert result.returncode == 0, result.stderr
    assert "Indexed 2 files" in result.stdout and "1 skipped" in result.stdout
    assert "index\\xff" in result.stdout
    assert "skipped" in result.stderr and "binary\\xff.txt: binary file" in result.stderr
    answer = run_qabot("ask", "--json", "--index", str(index_dir), "When did the harbour bridge reopen?", env=user_env)
    _clean(answer)
    sources = [passage["source"] for passage in json.loads(answer.stdout)["passages"]]
    assert any(source.endswith("odd\\xff\\xfe.txt") for source in sources), sources
    again = run_qabot("index", "--json", "--index", str(index_dir), str(folder), env=user_env)
    _clean(again)
    summary = json.loads(again.stdout)
    assert summary["files_unchanged"] == 2 and summary["skipped"][0]["path"].endswith("binary\\xff.txt")


# --- Devices, FIFOs, sockets, folders and oversized files ------------------------------------------


def test_special_files_are_skipped_with_the_reason_however_they_are_named(tmp_path, user_env):
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(SEED_ARTICLE, folder / "good.txt")
    (folder / "zero.txt").symlink_to("/dev/zero")
    os.mkfifo(folder / "pipe.md")
    (tmp_path / "a-folder").mkdir()
    (folder / "folder.txt").symlink_to(tmp_path / "a-folder")
    big = tmp_path / "big.txt"
    big.write_text("Big news\n\n" + "The bridge reopened on Monday. " * 1000)
    (folder / "big-link.txt").symlink_to(big)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "socket.txt"))
    env = {**user_env, "QABOT_INDEX_MAX_FILE_MB": "0.01"}
    try:
        result = run_qabot(
            "index",
            "--index",
            str(tmp_path / "index"),
            str(folder),
            str(folder / "zero.txt"),  # named directly, as in `qabot index z.txt`
            str(folder / "pipe.md"),
            str(big),
            env=env,
            timeout=120,
        )
    finally:
        listener.close()

    _clean(result)
    assert result.returncode == 1, result.stderr  # the files named directly gave nothing, the folder did
    assert "Indexed 1 file (" in result.stdout
    warnings = "\n".join(line for line in result.stderr.splitlines() if line.startswith("warning:"))
    for name, reason in [
        ("zero.txt", "a character device, not a regular file"),
        ("pipe.md", "a FIFO (named pipe), not a regular file"),
        ("socket.txt", "a socket, not a regular file"),
        ("folder.txt", "a folder, not a regular file"),
        ("big-link.txt", "bigger than 0.01 MB (index.max_file_mb)"),
        ("big.txt", "bigger than 0.01 MB (index.max_file_mb)"),
    ]:
        assert f"{name}: {reason}" in warnings, (name, warnings)


def test_the_size_limit_holds_whatever_the_file_size_says(tmp_path):
    status = Path("/proc/self/status")  # a regular file whose size reads as 0, yet holds a kilobyte or more
    if not status.is_file() or status.stat().st_size:
        pytest.skip("needs Linux /proc")
    skipped = ArticleLoader(max_file_mb=100 / 2**20).load(status)
    assert skipped == SkippedFile(str(status), f"bigger than {100 / 2**20:g} MB (index.max_file_mb)")
    assert ArticleLoader().load(tmp_path) == SkippedFile(str(tmp_path), "a folder, not a regular file")


# --- A full disk ----------------------------------------------------------------------------------

FULL_DISK = """
import errno, sys
from pathlib import Path
import bm25s
import retrieval.stores.embedded.index_folder as store
from bot.cli import main

point = sys.argv.pop(1)

def full(path):
    Path(path).write_bytes(b"half")
    raise OSError(errno.ENOSPC, "No space left on device", str(path))

if point == "array":
    store.np.save = lambda path, array, *args, **kwargs: full(path)
else:
    bm25s.BM25.save = lambda self, folder, **kwargs: full(Path(folder) / "data.csc.index.npy")
main()
"""


@pytest.mark.parametrize("point", ["array", "bm25"])
def test_a_full_disk_is_one_line_and_leaves_the_index_as_it_was(copy_of_seed_index, tmp_path, user_env, point):
    live = _generations(copy_of_seed_index)
    article = _article(tmp_path / "bridge.txt")
    command = [sys.executable, "-c", FULL_DISK, point, "index", "--index", str(copy_of_seed_index), str(article)]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **user_env}, cwd=ROOT, timeout=300
    )

    assert result.returncode == 2
    assert f"no space left on device in {copy_of_seed_index}" in one_line_error(result)
    assert _generations(copy_of_seed_index) == live  # the half-written generation is gone
    assert not list(copy_of_seed_index.glob(".*.tmp"))
    answer = run_qabot("ask", "--index", str(copy_of_seed_index), QUESTION, env=user_env)
    assert answer.returncode == 0 and "Donald Trump" in answer.stdout


@pytest.fixture()
def small_disk(tmp_path):
    """A 3 MB tmpfs (needs root and a kernel that allows the mount; skipped otherwise)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_really_full_disk_fails_cleanly_and_orphans_are_cleared_at_the_next_write(small_disk, tmp_path, user_env):
    index_dir = small_disk / "index"
    assert run_qabot("index", "--index", str(index_dir), str(SEED_ARTICLE), env=user_env).returncode == 0
    live = _generations(index_dir)
    filler = small_disk / "filler"
    with filler.open("wb") as handle:  # fill the disk up to its last few kilobytes
        handle.write(b"\0" * (os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize - 16 * 1024))

    full = run_qabot("index", "--index", str(index_dir), str(_article(tmp_path / "bridge.txt")), env=user_env)

    assert full.returncode == 2
    assert f"no space left on device in {index_dir}" in one_line_error(full)
    assert _generations(index_dir) == live
    assert "Donald Trump" in run_qabot("ask", "--index", str(index_dir), QUESTION, env=user_env).stdout
    # What an earlier crash left behind is removed before the next write, which then fits.
    orphan = index_dir / "gen-20000101000000-0rphan00"
    orphan.mkdir()
    filler.rename(orphan / "passage_embeddings.npy")
    rebuilt = run_qabot("index", "--rebuild", "--index", str(index_dir), str(tmp_path / "bridge.txt"), env=user_env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert not orphan.exists()


# --- Nothing to index -----------------------------------------------------------------------------


@pytest.mark.parametrize("contents", ["empty folder", "only a skipped file", "only other files"])
def test_nothing_to_index_is_one_line_and_writes_nothing(tmp_path, user_env, contents):
    folder = tmp_path / "articles"
    folder.mkdir()
    if contents == "only a skipped file":
        (folder / "broken.txt").write_bytes(b"\x00\x01\x02")
    elif contents == "only other files":
        (folder / "photo.jpg").write_bytes(b"\xff\xd8")
    index_dir = tmp_path / "index"

    result = run_qabot("index", "--index", str(index_dir), str(folder), env=user_env)

    assert result.returncode == 2
    assert f"nothing to index in {folder}" in one_line_error(result)
    assert "RuntimeWarning" not in result.stderr
    assert not index_dir.exists()
    if contents == "only a skipped file":
        assert "skipped" in result.stderr and "broken.txt: binary file" in result.stderr


def test_nothing_to_index_leaves_an_existing_index_untouched(copy_of_seed_index, tmp_path, user_env):
    live = _generations(copy_of_seed_index)
    (tmp_path / "empty").mkdir()
    result = run_qabot("index", "--rebuild", "--index", str(copy_of_seed_index), str(tmp_path / "empty"), env=user_env)
    assert result.returncode == 2 and "nothing to index" in one_line_error(result)
    assert _generations(copy_of_seed_index) == live


@pytest.mark.parametrize("command", ["chat", "bot"])
def test_chat_and_bot_on_an_empty_index_with_an_empty_corpus_name_index_corpus(tmp_path, user_env, command):
    (tmp_path / "empty").mkdir()
    env = {**user_env, **BOT_ENV, "QABOT_INDEX_CORPUS": str(tmp_path / "empty")}
    result = run_qabot(command, "--index", str(tmp_path / "index"), input="", env=env)
    assert result.returncode == 2
    line = one_line_error(result)
    assert "nothing to index in index.corpus" in line and "QABOT_INDEX_CORPUS" in line
    assert not (tmp_path / "index").exists()


# --- Damaged index files --------------------------------------------------------------------------


def _delete(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGES = {"delete": _delete, "truncate": _truncate, "flip a byte": _flip}


def test_every_file_of_a_generation_is_checked(seed_index_dir, tmp_path):
    embedding_id = QAEngine(make_settings(seed_index_dir)).embedding_id
    generation = current_generation(seed_index_dir)
    assert generation is not None
    names = sorted(p.relative_to(generation).as_posix() for p in generation.rglob("*") if p.is_file())
    assert "manifest.json" in names and any(name.startswith("bm25/") for name in names)
    for name in names:
        for damage, apply in DAMAGES.items():
            index_dir = tmp_path / f"{damage}-{name.replace('/', '-')}"
            shutil.copytree(seed_index_dir, index_dir)
            apply(current_generation(index_dir) / name)  # type: ignore[operator]
            with pytest.raises(IndexDamagedError) as error:
                load_index(index_dir, embedding_id)
            message = str(error.value)
            assert REBUILD in message and "\n" not in message, (name, damage, message)
            shutil.rmtree(index_dir)


@pytest.mark.parametrize(
    ("command", "damage", "name"),
    [
        ("ask", "delete", "bm25/params.index.json"),
        ("chat", "truncate", "bm25/indptr.csc.index.npy"),
        ("bot", "flip a byte", "bm25/data.csc.index.npy"),
        ("index", "flip a byte", "bm25/vocab.tokenizer.json"),
    ],
)
def test_damaged_bm25_files_are_reported_by_every_command(copy_of_seed_index, user_env, command, damage, name):
    DAMAGES[damage](current_generation(copy_of_seed_index) / name)  # type: ignore[operator]
    result = _run_on_index(command, copy_of_seed_index, user_env)
    assert result.returncode == 2
    line = one_line_error(result)
    assert "damaged" in line and name in line and REBUILD in line
    assert "unchanged" not in result.stdout


# --- Settings, folders and index files of the wrong shape --------------------------------------


def test_list_settings_from_the_environment_take_the_forms_users_type(seed_index_dir, user_env, tmp_path):
    env = {**user_env, "QABOT_TELEGRAM_ALLOWLIST": "123,456", "QABOT_INDEX_CORPUS": "seeds"}
    result = run_qabot("ask", "--index", str(seed_index_dir), QUESTION, env=env)
    _clean(result)
    assert result.returncode == 0 and "Donald Trump" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("QABOT_TELEGRAM_ALLOWLIST", "123, 456", [123, 456]),
        ("QABOT_TELEGRAM_ALLOWLIST", "[123, -1001234567890]", [123, -1001234567890]),
        ("QABOT_TELEGRAM_ALLOWLIST", "123", [123]),
        ("QABOT_TELEGRAM_ALLOWLIST", "", []),
        ("QABOT_INDEX_CORPUS", "one,two", [Path("one"), Path("two")]),
        ("QABOT_INDEX_CORPUS", '["one", "two"]', [Path("one"), Path("two")]),
        ("QABOT_INDEX_CORPUS", "seeds", [Path("seeds")]),
    ],
)
def test_list_forms(monkeypatch, variable, value, expected):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(variable, value)
    settings = load_settings()
    assert (settings.telegram.allowlist if "ALLOWLIST" in variable else settings.index.corpus) == expected


def test_a_single_path_holding_a_comma_is_one_path(monkeypatch, tmp_path):
    folder = tmp_path / "news, 2024"
    folder.mkdir()
    monkeypatch.setenv("QABOT_INDEX_CORPUS", str(folder))
    assert load_settings().index.corpus == [folder]


@pytest.mark.parametrize("value", ["[1, 2", "1,two", '{"a": 1}'])
def test_a_malformed_list_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("QABOT_TELEGRAM_ALLOWLIST", value)
    with pytest.raises(ConfigError, match="telegram.allowlist.* in QABOT_TELEGRAM_ALLOWLIST") as error:
        load_settings()
    assert error.value.exit_code == 2


@pytest.mark.parametrize(
    ("where", "key", "reason", "command"),
    [
        ("--index", "index.dir on the command line", "is a file, not a folder", "ask"),
        ("--index", "index.dir on the command line", "is a file, not a folder", "index"),
        ("QABOT_INDEX_DIR", "index.dir in QABOT_INDEX_DIR", "which is a file, not a folder", "index"),
        ("QABOT_DATA_DIR", "data.dir in QABOT_DATA_DIR", "is a file, not a folder", "ask"),
        ("QABOT_MODELS_ONNX_DIR", "models.onnx_dir in QABOT_MODELS_ONNX_DIR", "is a file, not a folder", "index"),
        ("QABOT_MODELS_CACHE_DIR", "models.cache_dir in QABOT_MODELS_CACHE_DIR", "is a file, not a folder", "ask"),
    ],
)
def test_a_file_where_a_folder_belongs_is_one_line_naming_the_key(tmp_path, user_env, where, key, reason, command):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    if where == "--index":
        options, env = ["--index", str(a_file)], user_env
    elif where == "QABOT_INDEX_DIR":
        options, env = [], {**user_env, where: str(a_file / "index")}
    else:
        options, env = ["--index", str(tmp_path / "index")], {**user_env, where: str(a_file)}
    result = run_qabot(command, *options, QUESTION if command == "ask" else str(SEED_ARTICLE), env=env)
    assert result.returncode == 2
    line = one_line_error(result)
    assert key in line and reason in line, line


def test_a_section_that_is_not_a_json_object_is_one_line(user_env):
    result = run_qabot("ask", QUESTION, env={**user_env, "QABOT_INDEX": "not json"})
    assert result.returncode == 2
    assert "QABOT_INDEX_DIR" in one_line_error(result)


def test_a_config_file_that_is_a_fifo_or_a_folder_is_one_line(tmp_path, user_env):
    os.mkfifo(tmp_path / "qabot.toml")
    for config in (tmp_path / "qabot.toml", tmp_path):
        result = run_qabot("ask", "--config", str(config), QUESTION, env=user_env, timeout=60)
        assert result.returncode == 2
        assert "cannot read config file" in one_line_error(result)


@pytest.mark.parametrize(
    ("pointer", "content", "command"),
    [
        ("CURRENT", b"\xff\xfe\x00garbage", "ask"),
        ("CURRENT", b"../../etc\n", "index"),
        ("CURRENT", b"", "chat"),
        ("manifest.json", b'{"format_version": 2, "dimension": "384"}', "index"),
        ("manifest.json", b"[1, 2, 3]", "ask"),
        ("manifest.json", b"\x89PNG\r\n\x1a\n", "bot"),
    ],
)
def test_garbage_in_pointer_and_manifest_files_is_one_line(copy_of_seed_index, user_env, pointer, content, command):
    generation = current_generation(copy_of_seed_index)
    assert generation is not None
    (copy_of_seed_index / pointer if pointer == "CURRENT" else generation / pointer).write_bytes(content)
    result = _run_on_index(command, copy_of_seed_index, user_env)
    assert result.returncode == 2
    line = one_line_error(result)
    assert str(copy_of_seed_index) in line and REBUILD in line


def test_an_os_error_anywhere_is_one_line_naming_the_path(monkeypatch, capsys):
    import bot.cli

    def fails(**options: object) -> None:
        raise NotADirectoryError(20, "Not a directory", "/srv/qabot/report.md/x")

    monkeypatch.setattr(bot.cli, "app", fails)
    with pytest.raises(SystemExit) as exit_:
        bot.cli.main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "error: Not a directory: /srv/qabot/report.md/x"


def test_the_engine_reports_a_damaged_index_on_plain_indexing(copy_of_seed_index):
    _flip(current_generation(copy_of_seed_index) / "bm25" / "data.csc.index.npy")  # type: ignore[operator]
    with pytest.raises(IndexDamagedError, match="qabot index --rebuild"):
        QAEngine(make_settings(copy_of_seed_index)).index_paths([SEED_ARTICLE])


def test_a_damaged_onnx_cache_is_made_again_and_the_question_answered(seed_index_dir, tmp_path):
    """A garbage or cut-short export in models.onnx_dir: the next command deletes it, exports again and answers."""
    onnx_dir = tmp_path / "onnx"
    env = {"QABOT_DATA_DIR": str(tmp_path / "data"), "QABOT_MODELS_ONNX_DIR": str(onnx_dir)}
    question = ("ask", "Who declared the talks dead?", "--index", str(seed_index_dir))
    assert run_qabot(*question, env=env).returncode == 0
    exports = sorted(onnx_dir.rglob("*.onnx"))
    assert exports
    for damage in (b"garbage that is no ONNX graph", None):  # None: cut to a third
        for export in exports:
            data = export.read_bytes()
            export.write_bytes(data[: len(data) // 3] if damage is None else damage)
        again = run_qabot(*question, env=env)
        assert again.returncode == 0 and "Trump" in again.stdout and "Traceback" not in again.stderr
        assert "making it again" in again.stderr  # the operator's note
        assert all(export.stat().st_size > 1_000_000 for export in exports)  # made again, whole


def test_a_damaged_onnx_export_is_noted_once_and_one_that_cannot_be_made_names_its_folder(
    tmp_path, caplog, monkeypatch
):
    from retrieval.errors import QabotError
    from retrieval.models import onnx
    from retrieval.models.resolve import DEFAULT_READER_MODEL, resolve_model

    model = resolve_model(DEFAULT_READER_MODEL).path
    session = onnx.load_onnx(model, tmp_path, quantize=False, task="question-answering")
    assert session is not None
    (export,) = tmp_path.rglob("model.onnx")
    export.write_bytes(b"garbage")
    with caplog.at_level("WARNING", logger="retrieval.models.onnx"):
        assert onnx.load_onnx(model, tmp_path, quantize=False, task="question-answering") is not None
    notes = [r.getMessage() for r in caplog.records if "making it again" in r.getMessage()]
    assert len(notes) == 1 and str(export) in notes[0]

    def broken_export(*args, **kwargs):
        export.write_bytes(b"garbage")
        return export

    monkeypatch.setattr(onnx, "onnx_model", broken_export)
    with pytest.raises(QabotError, match="remove that folder"):
        onnx.load_onnx(model, tmp_path, quantize=False, task="question-answering")
