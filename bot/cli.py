"""`qabot`: the command line. Each command parses its options, calls the engine and prints.

No traceback reaches the user: errors print one line that says what to do next.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bot.progress import progress_bars
from retrieval.errors import QabotError
from retrieval.files import display_path, no_space_left
from retrieval.settings import Settings, load_settings

app = typer.Typer(
    help="Question answering over news articles: index articles, then ask, chat, run a Telegram bot or evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
models_app = typer.Typer(help="See and fetch the models qabot uses.", no_args_is_help=True)
app.add_typer(models_app, name="models")
feeds_app = typer.Typer(help="The RSS and Atom feeds `qabot refresh` reads.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
store_app = typer.Typer(
    help="Where the passages are kept: the embedded index folder (default) or Milvus (store.backend).",
    no_args_is_help=True,
)
app.add_typer(store_app, name="store")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", help="Index folder (default: QABOT_INDEX_DIR or the config's index.dir)."),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Config file (default: QABOT_CONFIG or config/qabot.toml).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
TopKOpt = Annotated[int | None, typer.Option("--top-k", help="Passages retrieved per question.", min=1)]
ReaderOpt = Annotated[str | None, typer.Option("--reader", help="Reader model: hub id or local folder.")]


def _settings(config: Path | None, index: Path | None = None, **sections: dict[str, Any]) -> Settings:
    overrides: dict[str, dict[str, Any]] = {
        k: {n: v for n, v in s.items() if v is not None} for k, s in sections.items()
    }
    if index is not None:
        overrides.setdefault("index", {})["dir"] = index.expanduser().resolve()
    return load_settings(config, **overrides)


def _answering_settings(config: Path | None, index: Path | None, top_k: int | None, reader: str | None) -> Settings:
    """Settings for the commands that answer questions (the flags they share)."""
    return _settings(config, index, retrieval={"top_k": top_k}, models={"reader": reader})


def _engine(settings: Settings) -> Any:
    from retrieval.engine import QAEngine

    return QAEngine(settings)


def _warn_skipped(skipped: list[Any]) -> None:
    for file in skipped:
        err.print(f"warning: skipped {file.path}: {file.reason}", style="yellow", markup=False, soft_wrap=True)


def _index_with_progress(index: Callable[..., Any], quiet: bool = False) -> Any:
    """Run `index(progress=...)` with a rich progress bar on stderr; warns about each skipped file."""
    from retrieval.ingest.indexing import NothingToIndexError

    try:
        with progress_bars(err, quiet) as update:
            report = index(progress=update)
    except NothingToIndexError as error:  # the bars are gone before the warnings are printed
        _warn_skipped(error.skipped)
        raise
    _warn_skipped(report.skipped)
    return report


@app.command()
def index(
    targets: Annotated[
        list[str] | None, typer.Argument(help="Article files or folders (.txt, .md, .html), or http(s) article URLs.")
    ] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start a new index instead of updating it.")] = False,
    feeds: Annotated[bool, typer.Option("--feeds", help="Also refresh the feeds (as `qabot refresh`).")] = False,
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index articles: split them into passages, embed them and save them in the index (folder or Milvus).

    Re-indexing a file or URL adds no duplicates; a changed one replaces its old passages.
    """
    from bot.web_commands import index_web
    from retrieval.ingest.feeds import split_targets
    from retrieval.ingest.indexing import IndexReport

    paths, urls = split_targets(targets or [])
    if not (paths or urls or feeds):
        raise QabotError("nothing to index: give files, folders or URLs, or --feeds", exit_code=2)
    settings = _settings(config, index_dir)
    engine = _engine(settings)
    report = (
        _index_with_progress(lambda progress: engine.index_paths(paths, rebuild=rebuild, progress=progress), as_json)
        if paths
        else IndexReport()
    )
    web = index_web(engine, urls, feeds, err, quiet=as_json) if urls or feeds else None
    rate = report.passages_added / report.seconds if report.seconds else 0.0
    if as_json:
        summary = {
            **report.__dict__,
            "skipped": [s.__dict__ for s in report.skipped],
            "index": engine.store.location,
            **({"web": web.to_dict()} if web else {}),
        }
        out.print_json(json.dumps(summary))
        return
    if web is not None:
        from bot.formatting import render_web_report

        out.print(render_web_report(web), soft_wrap=True)
        if not paths:
            return
    out.print(
        f"Indexed {report.files_indexed} file(s) ({report.files_unchanged} unchanged, "
        f"{len(report.skipped)} skipped): "
        f"{report.passages_added} new passages, {report.passages_total} in {engine.store.location} "
        f"({report.seconds:.1f} s, {rate:.0f} passages/s).",
        markup=False,
    )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    top_k: TopKOpt = None,
    reader: ReaderOpt = None,
) -> None:
    """Answer one question from the index: the answer, its confidence, article and evidence sentence."""
    if not question.strip():
        raise QabotError('empty question: ask something, e.g. qabot ask "Who declared the talks dead?"')
    settings = _answering_settings(config, index_dir, top_k, reader)
    engine = _engine(settings)
    answer = engine.ask(question)
    # The operator's note (e.g. no reader model) belongs to this one-off run's output.
    notices = [*answer.notices, *([engine.reader_notice] if engine.reader_notice else [])]
    if as_json:
        out.print_json(json.dumps({**answer.to_dict(), "notices": notices}, ensure_ascii=False))
        return
    from bot.formatting import render_answer

    for notice in notices:
        err.print(f"note: {notice}", style="yellow", markup=False, soft_wrap=True)
    out.print(render_answer(answer))


@app.command()
def chat(
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    top_k: TopKOpt = None,
    reader: ReaderOpt = None,
) -> None:
    """Chat: ask questions one after another; follow-ups keep the context. Indexes the corpus on first use."""
    from bot.chat import run_chat
    from retrieval.ingest.indexing import describe_paths

    settings = _answering_settings(config, index_dir, top_k, reader)
    engine = _engine(settings)
    if engine.is_empty():
        err.print(f"The index is empty: indexing {describe_paths(settings.index.corpus)} first.", style="dim")
        _index_with_progress(engine.index_corpus)
    engine.warm_up()
    raise typer.Exit(run_chat(engine, out))


@models_app.command("list")
def models_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Show where each configured model is found on this machine (folder, package, cache or missing)."""
    from retrieval.models.resolve import resolve_model

    settings = _settings(config)
    rows = []
    for role, name in (("embedding", settings.models.embedding), ("reader", settings.models.reader)):
        found = resolve_model(name, settings.models.cache_dir)
        rows.append({"role": role, "name": name, "origin": found.origin, "path": str(found.path or "")})
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for row in rows:
        where = f"{row['origin']}, {row['path']}" if row["path"] else "not on this machine (run `qabot models pull`)"
        out.print(f"{row['role']:<10} {row['name']}: {where}", markup=False, soft_wrap=True)


@models_app.command("pull")
def models_pull(config: ConfigOpt = None) -> None:
    """Download the configured models into the Hugging Face cache (needs access to the hub)."""
    from retrieval.models.resolve import pull_model

    settings = _settings(config)
    for name in (settings.models.embedding, settings.models.reader):
        with err.status(f"pulling {name}..."):
            folder = pull_model(name, settings.models.cache_dir)
        out.print(f"{name}: {folder}", markup=False)


@app.command("bot")
def telegram_bot(
    webhook_url: Annotated[
        str | None,
        typer.Option("--webhook-url", help="Use a webhook at this public HTTPS URL instead of polling."),
    ] = None,
    listen: Annotated[str | None, typer.Option("--listen", help="Webhook listen address.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Webhook listen port.", min=1, max=65535)] = None,
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the Telegram bot (token from TELEGRAM_BOT_TOKEN or telegram.token_file)."""
    from bot.telegram.app import bot_command

    settings = _settings(config, index_dir)
    raise typer.Exit(bot_command(settings, webhook_url=webhook_url, listen=listen, port=port))


@app.command("eval")
def evaluate(
    questions: Annotated[Path, typer.Argument(help="Question set: SQuAD JSON, JSONL or CSV.")],
    corpus: Annotated[
        list[Path] | None,
        typer.Option("--corpus", help="Articles to answer from (default: the set's own paragraphs)."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Write the full results as JSON here.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write a Markdown report with plots here.")] = None,
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    top_k: TopKOpt = None,
    reader: ReaderOpt = None,
) -> None:
    """Evaluate on a question set: exact match, F1, evidence hits, retrieval recall and latency."""
    from bot.evaluation.command import eval_command

    settings = _answering_settings(config, index_dir, top_k, reader)
    eval_command(settings, questions, list(corpus or []), json_out, report, out)


def describe_os_error(error: OSError) -> str:
    """An error of the operating system as one line naming the path, e.g. a folder that cannot be made."""
    path = display_path(error.filename) if isinstance(error.filename, (str, bytes, os.PathLike)) else ""
    if no_space_left(error):
        return f"no space left on device in {os.path.dirname(path) or path or 'the target folder'}"
    reason = error.strerror or str(error)
    return f"{reason}: {path}" if path else reason


@app.command()
def refresh(index_dir: IndexOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Read the feeds and index their new and changed articles; drop articles older than index.max_age_days."""
    from bot.formatting import render_web_report
    from bot.web_commands import index_web

    engine = _engine(_settings(config, index_dir))
    report = index_web(engine, [], True, err, quiet=as_json)
    if as_json:
        out.print_json(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    out.print(render_web_report(report), soft_wrap=True)


@app.command()
def sources(index_dir: IndexOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List the indexed articles: source, title, passages and date (the names `qabot remove` takes)."""
    engine = _engine(_settings(config, index_dir))
    engine.store.check()
    table = engine.store.sources()
    if as_json:
        out.print_json(json.dumps({"store": engine.store.location, "sources": table}, ensure_ascii=False))
        return
    for source, entry in sorted(table.items()):
        date = f", {entry['published']}" if entry.get("published") else ""
        out.print(f"{source}  {entry.get('title', '')} ({entry.get('passages', 0)} passages{date})", markup=False)
    out.print(f"{len(table)} article(s) in {engine.store.location}.", markup=False)


@app.command()
def remove(
    names: Annotated[list[str], typer.Argument(help="Sources to delete, as `qabot sources` lists them.")],
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete articles and their passages from the index (on either store backend)."""
    engine = _engine(_settings(config, index_dir))
    report = _index_with_progress(lambda progress: engine.remove_sources(names, progress=progress), as_json)
    if as_json:
        out.print_json(json.dumps({"removed": report.sources_dropped, "passages_total": report.passages_total}))
        return
    out.print(
        f"Removed {report.sources_dropped} article(s); "
        f"{report.passages_total} passages left in {engine.store.location}.",
        markup=False,
    )


@store_app.command("copy")
def store_copy(
    to: Annotated[str, typer.Option("--to", help="The backend to copy into: milvus.")] = "milvus",
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy the embedded index (index.dir) into Milvus (store.uri, store.collection) without embedding again.

    The Milvus collection is replaced. Then set store.backend = "milvus" to answer from it.
    """
    if to != "milvus":
        raise QabotError(f"--to {to}: the embedded index can be copied to milvus only", exit_code=2)
    from retrieval.stores.configured import copy_embedded_to_milvus

    settings = _settings(config, index_dir)
    engine = _engine(settings)
    with progress_bars(err, as_json) as update:
        copied = copy_embedded_to_milvus(settings, engine.embedding_id, engine.dimension, update)
    where = f"Milvus collection {settings.store.collection} at {settings.store_uri}"
    if as_json:
        out.print_json(json.dumps({"copied": copied, "to": where}))
        return
    out.print(f'Copied {copied} passages to {where}; set store.backend = "milvus" to use it.', markup=False)


FeedUrl = Annotated[str, typer.Argument(help="The feed's http(s) URL (RSS or Atom).")]


@feeds_app.command("add")
def feeds_add(url: FeedUrl, config: ConfigOpt = None) -> None:
    """Add a feed (kept in <data.dir>/feeds.json, beside the config's feeds.urls)."""
    from retrieval.ingest.feeds import FeedList

    added = FeedList(_settings(config)).add(url)
    out.print(f"Added {url}." if added else f"{url} is already listed.", markup=False)


@feeds_app.command("list")
def feeds_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List the feeds: those of the config file and those added."""
    from bot.web_commands import feed_rows

    rows = feed_rows(_settings(config))
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for row in rows:
        out.print(f"{row['url']}  ({row['from']})", markup=False, soft_wrap=True)
    if not rows:
        out.print("No feeds yet: add one with `qabot feeds add URL`.", markup=False)


@feeds_app.command("remove")
def feeds_remove(url: FeedUrl, config: ConfigOpt = None) -> None:
    """Remove a feed added with `qabot feeds add` (the config's feeds are removed in the config)."""
    from retrieval.ingest.feeds import FeedList

    FeedList(_settings(config)).remove(url)
    out.print(f"Removed {url}.", markup=False)


def main() -> None:
    """Console-script entry point: runs the app and turns every error into one line."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # A file name that is not UTF-8 is printed with \xNN escapes rather than stopping the output.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        app()
    except QabotError as error:
        err.print(f"error: {error}", style="red", markup=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except OSError as error:  # a path that cannot be read or made: a setting or an argument to fix
        if os.environ.get("QABOT_DEBUG"):
            raise
        err.print(f"error: {describe_os_error(error)}", style="red", markup=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted", style="dim")
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - last line of defence: never show a traceback
        if os.environ.get("QABOT_DEBUG"):
            raise
        err.print(
            f"error: unexpected {type(error).__name__}: {error}. Set QABOT_DEBUG=1 to see details.",
            style="red",
            markup=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
