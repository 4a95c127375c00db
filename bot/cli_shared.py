"""What the `qabot` commands share: the two consoles, the common options, settings, the engine and
indexing with progress bars."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bot.progress import progress_bars
from bot.words import plural
from retrieval.settings import Settings, load_settings

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

IndexOpt = Annotated[
    Path | None,
    typer.Option(
        "--index", metavar="FOLDER", help="The index folder (default: QABOT_INDEX_DIR or the config's index.dir)."
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", metavar="FILE", help="The config file (default: QABOT_CONFIG or config/qabot.toml)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
TopKOpt = Annotated[
    int | None, typer.Option("--top-k", metavar="N", help="How many passages to read per question (1 or more).")
]
ReaderOpt = Annotated[
    str | None, typer.Option("--reader", metavar="MODEL", help="The reader model: a hub name or a local folder.")
]


def settings_from(config: Path | None, index: Path | None = None, **sections: dict[str, Any]) -> Settings:
    """The settings with the options given on the command line (those not None) on top."""
    overrides: dict[str, dict[str, Any]] = {
        k: {n: v for n, v in s.items() if v is not None} for k, s in sections.items()
    }
    if index is not None:
        overrides.setdefault("index", {})["dir"] = index.expanduser().resolve()
    return load_settings(config, **overrides)


def answering_settings(config: Path | None, index: Path | None, top_k: int | None, reader: str | None) -> Settings:
    """Settings for the commands that answer questions (the options they share)."""
    return settings_from(config, index, retrieval={"top_k": top_k}, models={"reader": reader})


def engine_for(settings: Settings) -> Any:
    """The engine for a CLI command; what it notes for the operator (no reader model, a cache made
    again) is printed once, as a "note:" line on stderr."""
    from retrieval.engine import QAEngine

    engine_log = logging.getLogger("retrieval")
    if not any(isinstance(handler, _OperatorNotes) for handler in engine_log.handlers):
        engine_log.addHandler(_OperatorNotes(logging.WARNING))
    return QAEngine(settings)


class _OperatorNotes(logging.Handler):
    """Prints the engine's warnings as one "note:" line each, every distinct note once."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        note = record.getMessage().splitlines()[0] if record.getMessage() else ""
        if note and note not in self.seen:
            self.seen.add(note)
            err.print(f"note: {note}", style="yellow", markup=False, soft_wrap=True)


def print_json(data: Any) -> None:
    out.print_json(data=data, ensure_ascii=False)


def warn(message: str) -> None:
    err.print(f"warning: {message}", style="yellow", markup=False, soft_wrap=True)


def _warn_skipped(skipped: list[Any], corpus: bool = False) -> None:
    """A warning for each skipped file; for the configured corpus (indexed by the chat on first use),
    files that are no articles (of an unsupported type) are named in one quiet line instead."""
    others = [file for file in skipped if corpus and file.reason.startswith("unsupported type")]
    for file in skipped:
        if file not in others:
            warn(f"skipped {file.path}: {file.reason}")
    if others:
        names = ", ".join(Path(str(file.path)).name for file in others)
        left_out = f"{plural(len(others), 'file')} that {'is' if len(others) == 1 else 'are'} no article"
        err.print(f"Left out {left_out}: {names}.", style="dim", markup=False)


def index_with_progress(index: Callable[..., Any], quiet: bool = False, corpus: bool = False) -> Any:
    """Run `index(progress=...)` with a rich progress bar on stderr; warns about each skipped file."""
    from retrieval.ingest.indexing import NothingToIndexError

    try:
        with progress_bars(err, quiet) as update:
            report = index(progress=update)
    except NothingToIndexError as error:  # the bars are gone before the warnings are printed
        _warn_skipped(error.skipped, corpus)
        raise
    _warn_skipped(report.skipped, corpus)
    return report


def outcome(failed: int, done: int) -> int:
    """The exit code of a command that did `done` things and failed at `failed` (reported as warnings):
    0 when nothing failed, 1 when some failed, 2 when everything failed."""
    if not failed:
        return 0
    return 1 if done else 2
