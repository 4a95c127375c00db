"""`qabot chat` at a terminal (a pseudo-terminal): line editing, Up for the previous question, the
history kept in the data folder, Ctrl-D to leave, and clear replies to bad input."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

from tests.conftest import MISSING_READER, QABOT, run_qabot

QUESTION = "Who declared the talks dead?"
UP, ENTER, CTRL_D = "\x1b[A", "\r", "\x04"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x01\x02]")


class Terminal:
    """`qabot chat` on a pseudo-terminal; `read_until` collects its output, ANSI codes removed."""

    def __init__(self, index_dir: Path, data_dir: Path) -> None:
        env = {name: value for name, value in os.environ.items() if not name.startswith("QABOT_")}
        env.update(
            QABOT_MODELS_READER=MISSING_READER, QABOT_DATA_DIR=str(data_dir), TERM="xterm", COLUMNS="100", LINES="40"
        )
        self.fd, child = pty.openpty()
        self.process = subprocess.Popen(
            [str(QABOT), "chat", "--index", str(index_dir)], stdin=child, stdout=child, stderr=child, env=env
        )
        os.close(child)
        self.raw = b""
        self.output = ""

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def read_until(self, text: str, count: int = 1, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while self.output.count(text) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} (x{count}) in the chat's output:\n{self.output[-2000:]}"
            ready, _, _ = select.select([self.fd], [], [], min(remaining, 1))
            if ready:
                try:
                    self.raw += os.read(self.fd, 65536)
                except OSError:  # nobody holds the terminal now: the chat has ended, or not yet begun
                    if self.process.poll() is not None:
                        break
                    time.sleep(0.1)
                self.output = _ANSI.sub("", self.raw.decode("utf-8", "replace"))
        return self.output

    def close(self) -> int:
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the chat did not end:\n{self.output[-2000:]}") from None
        finally:
            os.close(self.fd)


def test_up_brings_back_the_last_question_and_history_is_kept_between_chats(seed_index_dir, tmp_path):
    data = tmp_path / "data"
    chat = Terminal(seed_index_dir, data)
    try:
        chat.read_until("you>")
        chat.type(QUESTION + ENTER)
        chat.read_until("Donald Trump")
        chat.read_until("you>", 2)
        chat.type(UP)
        chat.read_until(QUESTION, 2)  # typed once, and back at the prompt
        chat.type(ENTER)
        chat.read_until("Donald Trump", 2)  # asked again
        chat.read_until("you>", 3)
        chat.type(ENTER)  # an empty line gets a hint
        chat.read_until("Type a question about the articles")
        chat.type("🤔🤔" + ENTER)
        chat.read_until("in words")
        chat.read_until("you>", 5)
        chat.type(CTRL_D)
    finally:
        assert chat.close() == 0
    assert QUESTION in (data / "chat-history").read_text(encoding="utf-8")
    assert (data / "chat-history").stat().st_mode & 0o077 == 0

    again = Terminal(seed_index_dir, data)
    try:
        again.read_until("you>")
        again.type(UP + UP + ENTER)  # from the last chat's history, before the emoji
        again.read_until("Donald Trump")
        again.read_until("you>", 2)
        again.type(CTRL_D)
    finally:
        assert again.close() == 0


def test_piped_chat_output_has_no_trailing_spaces_and_bad_input_gets_clear_replies(seed_index_dir, tmp_path):
    long_question = ("Who declared the talks dead " * 200)[:4000]
    script = "\n".join([QUESTION, "/sources", "/more", "👍🎉", long_question, "Кто declared 会谈 dead?", ""])
    result = run_qabot(
        "chat",
        "--index",
        str(seed_index_dir),
        input=script,
        env={"QABOT_MODELS_READER": MISSING_READER, "QABOT_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if line != line.rstrip()] == []
    assert "Donald Trump" in result.stdout and "Article: Mike Pompeo" in result.stdout
    assert "I can only answer questions in words" in result.stdout
    assert "cut" in result.stdout.lower() or "long" in result.stdout.lower()  # the long question's notice
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "chat-history").exists()  # piped lines are not kept
