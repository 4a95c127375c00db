"""The interactive chat: questions in, answers out, with follow-ups, /sources, /more and /help.

Works at a terminal and with piped input alike (then it reads one question a line). At a terminal
the line can be edited and earlier questions come back with Up (GNU readline), kept between chats
in `<data.dir>/chat-history`. Piped output has no trailing spaces.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rich.console import Console, RenderableType
from rich.text import Text

from bot.formatting import render_answer, render_more, render_sources, render_web_report
from bot.words import unreadable_question
from retrieval.answering.answer import Turn
from retrieval.engine import QAEngine
from retrieval.errors import QabotError

HISTORY_TURNS = 5
HISTORY_FILE = "chat-history"
HISTORY_LINES = 1000
# The prompt, bold cyan; \001 and \002 tell readline which characters take no room on the screen.
PROMPT = "\001\033[1;36m\002you>\001\033[0m\002 "
EMPTY_LINE = "Type a question about the articles, or /help for the commands."
HELP = """Ask a question about the indexed articles, e.g. "Who declared the talks dead?".
Follow-up questions ("When did he do that?") continue the conversation.
Commands:
  /sources  the passages behind the last answer
  /more     the other answers found for the last question
  /new      forget the conversation so far
  /refresh  read the feeds and index their new articles
  /help     this help
  /quit     leave (also Ctrl-D)
At the prompt, Up and Down bring back earlier questions; the line can be edited as in a shell."""


@contextlib.contextmanager
def _line_history(path: Path) -> Iterator[None]:
    """Readline's history, read from `path` and written back (only the owner may read it) at the end."""
    try:
        import readline
    except ImportError:  # no readline on this platform: plain input, no history
        yield
        return
    readline.clear_history()
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(HISTORY_LINES)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
            os.chmod(path, 0o600)


def _lines(console: Console, stdin: TextIO, history: Path) -> Iterator[str]:
    """The user's lines, stripped; at a terminal read with line editing and history."""
    if not (stdin.isatty() and console.is_terminal):
        for line in stdin:
            yield line.strip()
        return
    with _line_history(history):
        while True:
            try:
                line = input(PROMPT)
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            if not line.strip():
                console.print(EMPTY_LINE, style="dim")
            yield line.strip()


def _show(console: Console, renderable: RenderableType) -> None:
    """Prints at a terminal as rich draws it; into a pipe or file without the spaces rich pads lines with."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    console.file.flush()


def run_chat(engine: QAEngine, console: Console, stdin: TextIO = sys.stdin) -> int:
    """Run the chat loop until /quit or end of input; returns the exit code."""
    history: list[Turn] = []
    console.print(
        f"qabot: ask about the articles in {engine.index_dir} (/help for commands)", style="dim", soft_wrap=True
    )
    for line in _lines(console, stdin, engine.settings.data.dir / HISTORY_FILE):
        if not line:
            continue
        command = line.lower()
        if command in {"/quit", "/exit", "/q"}:
            break
        if command in {"/help", "/?"}:
            _show(console, Text(HELP))
            continue
        if command == "/sources":
            _show(console, render_sources(history[-1].answer if history else None))
            continue
        if command == "/more":
            _show(console, render_more(history[-1].answer if history else None))
            continue
        if command in {"/new", "/reset"}:
            history.clear()
            console.print("Started a new conversation.", style="dim")
            continue
        if command == "/refresh":
            _refresh(engine, console)
            continue
        if command.startswith("/"):
            console.print(f"Unknown command {line.split()[0]}: try /help.", markup=False)
            continue
        unreadable = unreadable_question(line)
        if unreadable:
            console.print(unreadable, markup=False)
            continue
        try:
            answer = engine.ask(line, history)
        except QabotError as error:
            console.print(f"error: {error}", style="red", markup=False)
            continue
        for notice in answer.notices:
            console.print(f"note: {notice}", style="yellow", markup=False, soft_wrap=True)
        _show(console, render_answer(answer))
        history = [*history, Turn(line, answer)][-HISTORY_TURNS:]
    return 0


def _refresh(engine: QAEngine, console: Console) -> None:
    """Reads the feeds now; the next question is answered from the new index."""
    from bot.web_commands import index_web

    try:
        report = index_web(engine, [], True, console)
    except QabotError as error:
        console.print(f"error: {error}", style="red", markup=False)
        return
    console.print(render_web_report(report), soft_wrap=True)
