"""The interactive chat: questions in, answers out, with follow-ups, /sources, /more and /help.

Works at a terminal and with piped input alike (then it reads one question a line).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

from rich.console import Console

from bot.formatting import render_answer, render_more, render_sources, render_web_report
from retrieval.answering.answer import Turn
from retrieval.engine import QAEngine
from retrieval.errors import QabotError

HISTORY_TURNS = 5
HELP = """Ask a question about the indexed articles, e.g. "Who declared the talks dead?".
Follow-up questions ("When did he do that?") continue the conversation.
Commands:
  /sources  the passages behind the last answer
  /more     the other answers found for the last question
  /new      forget the conversation so far
  /refresh  read the feeds and index their new articles
  /help     this help
  /quit     leave (also Ctrl-D)"""


def _lines(console: Console, stdin: TextIO) -> Iterator[str]:
    interactive = stdin.isatty() and console.is_terminal
    while True:
        try:
            line = console.input("[bold cyan]you>[/] ") if interactive else stdin.readline()
        except (EOFError, KeyboardInterrupt):
            return
        if not interactive and line == "":
            return
        yield line.strip()


def run_chat(engine: QAEngine, console: Console, stdin: TextIO = sys.stdin) -> int:
    """Run the chat loop until /quit or end of input; returns the exit code."""
    history: list[Turn] = []
    console.print(f"qabot: ask about the articles in {engine.index_dir} (/help for commands)", style="dim")
    if engine.reader_notice:
        console.print(f"note: {engine.reader_notice}", style="yellow", markup=False)
    for line in _lines(console, stdin):
        if not line:
            continue
        command = line.lower()
        if command in {"/quit", "/exit", "/q"}:
            break
        if command in {"/help", "/?"}:
            console.print(HELP, markup=False)
            continue
        if command == "/sources":
            console.print(render_sources(history[-1].answer if history else None))
            continue
        if command == "/more":
            console.print(render_more(history[-1].answer if history else None))
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
        try:
            answer = engine.ask(line, history)
        except QabotError as error:
            console.print(f"error: {error}", style="red", markup=False)
            continue
        for notice in answer.notices:
            console.print(f"note: {notice}", style="yellow", markup=False)
        console.print(render_answer(answer))
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
