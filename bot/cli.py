"""`qabot`: the command line. Each command parses its options, calls the engine and prints.

No traceback reaches the user: a failure prints one line, `error: <what failed>: <what to do next>`,
and exits 1 (or 2 when nothing was done or the command line was wrong; 0 is success).
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from bot import cli_index
from bot.cli_app import App
from bot.cli_shared import (
    ConfigOpt,
    IndexOpt,
    JsonOpt,
    ReaderOpt,
    TopKOpt,
    answering_settings,
    engine_for,
    err,
    index_with_progress,
    out,
    print_json,
    settings_from,
)
from retrieval.errors import QabotError
from retrieval.files import display_path, no_space_left

app = App("Answer questions about news articles: index articles, then ask, chat, run a Telegram bot or evaluate.")
models_app = App("See and download the models qabot uses.")
feeds_app = App("Manage the RSS and Atom feeds that `qabot refresh` reads.")
store_app = App("Manage where the passages are kept: the index folder (default) or Milvus (store.backend).")


def _print_version(wanted: bool) -> None:
    if wanted:
        try:
            out.print(f"qabot {version('qabot')}", markup=False)
        except PackageNotFoundError:
            out.print("qabot (version unknown: not installed; run `pip install -e .`)", markup=False)
        raise typer.Exit()


@app.callback()
def root(
    show_version: Annotated[
        bool, typer.Option("--version", help="Print qabot's version and exit.", callback=_print_version, is_eager=True)
    ] = False,
) -> None:
    pass  # the app's help says what qabot does; --version is handled by its callback


app.command("index")(cli_index.index)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(metavar="QUESTION", help="The question, in quotes.")],
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    top_k: TopKOpt = None,
    reader: ReaderOpt = None,
) -> None:
    """Answer one question from the index: the answer, how sure it is, the article and the sentence it comes from."""
    if not question.strip():
        raise QabotError('empty question: ask something, e.g. qabot ask "Who declared the talks dead?"', exit_code=2)
    engine = engine_for(answering_settings(config, index_dir, top_k, reader))
    answer = engine.ask(question)
    if as_json:  # the operator's note (e.g. no reader model) is also in the JSON, for scripts
        from bot.dates import date_meant

        meant = date_meant(answer.text, answer.published) if answer.known else ""
        notices = [*answer.notices, *filter(None, [engine.reader_notice])]
        print_json({**answer.to_dict(), **({"date_meant": meant} if meant else {}), "notices": notices})
        return
    from bot.formatting import render_answer

    for notice in answer.notices:
        err.print(f"note: {notice}", style="yellow", markup=False, soft_wrap=True)
    out.print(render_answer(answer))


@app.command()
def chat(index_dir: IndexOpt = None, config: ConfigOpt = None, top_k: TopKOpt = None, reader: ReaderOpt = None) -> None:
    """Ask questions one after another; follow-up questions keep the context. Indexes the articles on first use."""
    from bot.chat import run_chat
    from retrieval.ingest.indexing import describe_paths

    settings = answering_settings(config, index_dir, top_k, reader)
    engine = engine_for(settings)
    if engine.is_empty():
        err.print(f"The index is empty: indexing {describe_paths(settings.index.corpus)} first.", style="dim")
        index_with_progress(engine.index_corpus, corpus=True)
    engine.warm_up()
    raise typer.Exit(run_chat(engine, out))


@app.command("bot")
def telegram_bot(
    webhook_url: Annotated[
        str | None,
        typer.Option("--webhook-url", metavar="URL", help="Use a webhook at this public https address, not polling."),
    ] = None,
    listen: Annotated[
        str | None, typer.Option("--listen", metavar="ADDRESS", help="The address the webhook listens on.")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", metavar="PORT", help="The port the webhook listens on (1 to 65535).", min=1, max=65535),
    ] = None,
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the Telegram bot (its token from TELEGRAM_BOT_TOKEN or telegram.token_file)."""
    from bot.telegram.app import bot_command

    settings = settings_from(config, index_dir)
    raise typer.Exit(bot_command(settings, webhook_url=webhook_url, listen=listen, port=port))


@app.command("eval")
def evaluate(
    questions: Annotated[Path, typer.Argument(metavar="QUESTIONS", help="The question set: SQuAD JSON, JSONL or CSV.")],
    corpus: Annotated[
        list[Path] | None,
        typer.Option(
            "--corpus",
            metavar="PATH",
            help="Articles to answer from, a file or folder; repeat for more (default: the set's own paragraphs).",
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json-out", metavar="FILE", help="Write the full results as JSON to FILE.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", metavar="FILE", help="Write a Markdown report with plots to FILE.")
    ] = None,
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    top_k: TopKOpt = None,
    reader: ReaderOpt = None,
) -> None:
    """Measure the answers on a question set: exact match, F1, evidence found, retrieval recall and latency."""
    from bot.evaluation.command import eval_command

    settings = answering_settings(config, index_dir, top_k, reader)
    eval_command(settings, questions, list(corpus or []), json_out, report, out)


app.command()(cli_index.refresh)
app.command()(cli_index.sources)
app.command()(cli_index.remove)


@models_app.command("list")
def models_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Show where each configured model is found on this machine (folder, package, cache or missing)."""
    from retrieval.models.resolve import resolve_model

    settings = settings_from(config)
    rows = []
    for role, name in (("embedding", settings.models.embedding), ("reader", settings.models.reader)):
        found = resolve_model(name, settings.models.cache_dir)
        rows.append({"role": role, "name": name, "origin": found.origin, "path": str(found.path or "")})
    if as_json:
        print_json(rows)
        return
    for row in rows:
        where = f"{row['origin']}, {row['path']}" if row["path"] else "not on this machine (run `qabot models pull`)"
        out.print(f"{row['role']:<10} {row['name']}: {where}", markup=False, soft_wrap=True)


@models_app.command("pull")
def models_pull(config: ConfigOpt = None) -> None:
    """Download the configured models into the Hugging Face cache (needs access to the hub)."""
    from retrieval.models.resolve import pull_model

    settings = settings_from(config)
    for name in (settings.models.embedding, settings.models.reader):
        with err.status(f"pulling {name}..."):
            folder = pull_model(name, settings.models.cache_dir)
        out.print(f"{name}: {folder}", markup=False)


app.add_typer(models_app, name="models")
app.add_typer(feeds_app, name="feeds")
app.add_typer(store_app, name="store")
feeds_app.command("add")(cli_index.feeds_add)
feeds_app.command("list")(cli_index.feeds_list)
feeds_app.command("remove")(cli_index.feeds_remove)
store_app.command("copy")(cli_index.store_copy)


def describe_os_error(error: OSError) -> str:
    """An error of the operating system as one line naming the path, e.g. a folder that cannot be made."""
    path = display_path(error.filename) if isinstance(error.filename, (str, bytes, os.PathLike)) else ""
    if no_space_left(error):
        return f"no space left on device in {os.path.dirname(path) or path or 'the target folder'}: free some space"
    reason = error.strerror or str(error)
    return f"{reason}: {path}" if path else reason


def fail(message: str, exit_code: int) -> NoReturn:
    """Print the one error line and exit."""
    err.print(f"error: {message}", style="red", markup=False, soft_wrap=True)
    sys.exit(exit_code)


def _usage_error(error: typer.TyperException) -> NoReturn:
    """A wrong command line (unknown option, missing argument, bad value) as one line that points to -h."""
    message = error.format_message().strip().rstrip(".")
    if not message:  # a command group run without a command: its help is shown
        sys.exit(2)
    context = getattr(error, "ctx", None)
    command = context.command_path if context is not None else "qabot"
    fail(f"{message[:1].lower()}{message[1:]}: see `{command} -h`", getattr(error, "exit_code", 2))


def main() -> NoReturn:
    """Console-script entry point: runs the app and turns every error into one line."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # A file name that is not UTF-8 is printed with \xNN escapes rather than stopping the output.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = app(standalone_mode=False)
    except QabotError as error:
        fail(str(error), error.exit_code)
    except typer.TyperException as error:
        _usage_error(error)
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted", style="dim")
        sys.exit(130)
    except OSError as error:  # a path that cannot be read or made: a setting or an argument to fix
        if os.environ.get("QABOT_DEBUG"):
            raise
        fail(describe_os_error(error), 2)
    except Exception as error:  # noqa: BLE001 - last line of defence: never show a traceback
        if os.environ.get("QABOT_DEBUG"):
            raise
        fail(f"unexpected {type(error).__name__}: {error}: run again with QABOT_DEBUG=1 to see where", 1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
