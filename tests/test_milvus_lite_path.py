"""A Milvus Lite `store.uri` that names a plain file (or lies inside one) is one line saying it is
not a Milvus Lite database, not a guess that another process holds it. Run through `qabot`."""

from __future__ import annotations

import pytest

from tests.conftest import MISSING_READER, SEED_ARTICLE, one_line_error, run_qabot

pytest.importorskip("pymilvus")


def milvus_env(tmp_path, uri) -> dict[str, str]:
    return {
        "QABOT_MODELS_READER": MISSING_READER,
        "QABOT_DATA_DIR": str(tmp_path / "data"),
        "QABOT_STORE_BACKEND": "milvus",
        "QABOT_STORE_URI": str(uri),
    }


@pytest.mark.parametrize("command", [["ask", "Who declared the talks dead?"], ["index", str(SEED_ARTICLE)]])
def test_a_plain_file_as_the_milvus_lite_path_is_not_blamed_on_another_process(tmp_path, command):
    plain = tmp_path / "notes.db"
    plain.write_text("my notes, not a database\n")
    result = run_qabot(*command, env=milvus_env(tmp_path, plain))
    assert result.returncode == 2
    error = one_line_error(result)
    assert error.startswith(f"error: store.uri = {plain} is not a Milvus Lite database (a file)")
    assert "another process" not in error and "store.uri" in error
    assert plain.read_text() == "my notes, not a database\n"  # left as it was


def test_a_milvus_lite_path_inside_a_file_is_one_line(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("notes\n")
    result = run_qabot("ask", "Who declared the talks dead?", env=milvus_env(tmp_path, plain / "milvus.db"))
    assert result.returncode == 2
    assert f"is not a Milvus Lite database, inside {plain}, which is a file" in one_line_error(result)
