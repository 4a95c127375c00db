"""The `qabot` commands that fill and tend the index: index, refresh, sources, remove, store copy and feeds.

Exit codes: 0 done, 1 when some of the named files, folders, addresses or feeds gave nothing and others
did (each failure named in a warning, before the summary), 2 when nothing could be read or done.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bot.cli_shared import (
    ConfigOpt,
    IndexOpt,
    JsonOpt,
    engine_for,
    err,
    index_with_progress,
    out,
    outcome,
    print_json,
    settings_from,
    warn,
)
from bot.progress import progress_bars
from bot.words import plural
from retrieval.errors import QabotError


def index(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TARGET...",
            help="Article files or folders (.txt, .md, .html, .pdf, .docx), or http(s) addresses of articles.",
        ),
    ] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start a new index instead of adding to it.")] = False,
    feeds: Annotated[bool, typer.Option("--feeds", help="Also read the feeds, as `qabot refresh` does.")] = False,
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add articles to the index: split them into passages and keep them searchable.

    Indexing a file or address again adds nothing twice; a changed article replaces its old passages.
    """
    from bot.web_commands import index_web
    from retrieval.ingest.feeds import split_targets
    from retrieval.ingest.indexing import IndexReport

    paths, urls = split_targets(targets or [])
    if not (paths or urls or feeds):
        raise QabotError("nothing to index: give files, folders or web addresses, or --feeds", exit_code=2)
    engine = engine_for(settings_from(config, index_dir))
    report = (
        index_with_progress(lambda progress: engine.index_paths(paths, rebuild=rebuild, progress=progress), as_json)
        if paths
        else IndexReport()
    )
    _warn_failed_inputs(report)
    web = index_web(engine, urls, feeds, err, quiet=as_json) if urls or feeds else None
    failed, fetched = (len(web.failed), web.new + web.changed + web.unchanged) if web else (0, 0)
    code = outcome(failed + len(report.inputs_failed), fetched + report.files_indexed + report.files_unchanged)
    if as_json:
        print_json(
            {
                **report.__dict__,
                "skipped": [s.__dict__ for s in report.skipped],
                "inputs_failed": [s.__dict__ for s in report.inputs_failed],
                "index": engine.store.location,
                **({"web": web.to_dict()} if web else {}),
            }
        )
        raise typer.Exit(code)
    if web is not None:
        from bot.formatting import render_web_report

        out.print(render_web_report(web), soft_wrap=True)
    if paths:
        rate = report.passages_added / report.seconds if report.seconds else 0.0
        out.print(
            f"Indexed {plural(report.files_indexed, 'file')} ({report.files_unchanged} unchanged, "
            f"{len(report.skipped)} skipped): {plural(report.passages_added, 'new passage')}; "
            f"{plural(report.passages_total, 'passage')} in {engine.store.location} "
            f"({report.seconds:.1f} s, {rate:.0f} passages/s).",
            markup=False,
        )
        if report.skipped:
            out.print(f"Skipped {len(report.skipped)}: {_skipped_names(report.skipped)}.", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _warn_failed_inputs(report: Any) -> None:
    """A warning for each folder named that gave nothing (each skipped file has had its own)."""
    warned = {skipped.path for skipped in report.skipped}
    for failed in report.inputs_failed:
        if failed.path not in warned:
            warn(f"nothing indexed from {failed.path}: {failed.reason}")


def _skipped_names(skipped: list[Any], most: int = 10) -> str:
    """'notes.xyz (unsupported type), scan.pdf (no text...)': each skipped file by name, with why."""
    from pathlib import Path

    names = [f"{Path(s.path).name or s.path} ({s.reason})" for s in skipped[:most]]
    return ", ".join(names) + (f" and {len(skipped) - most} more" if len(skipped) > most else "")


def refresh(index_dir: IndexOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Read the feeds and index their new and changed articles; drop articles older than index.max_age_days."""
    from bot.formatting import render_web_report
    from bot.web_commands import index_web

    settings = settings_from(config, index_dir)
    engine = engine_for(settings)
    if not engine.web.feeds.urls():
        no_feeds = "no feeds to read: add one with `qabot feeds add URL` (or under [feeds] urls in the config)"
        if not settings.index.max_age_days:
            raise QabotError(no_feeds, exit_code=2)
        warn(f"{no_feeds}; dropping articles older than index.max_age_days only")
    report = index_web(engine, [], True, err, quiet=as_json)
    if as_json:
        print_json(report.to_dict())
    else:
        out.print(render_web_report(report), soft_wrap=True)
    done = report.new + report.changed + report.unchanged + report.feeds_unchanged
    raise typer.Exit(outcome(len(report.failed), done))


def sources(index_dir: IndexOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List the indexed articles: source, title, passages and date (the names `qabot remove` takes)."""
    engine = engine_for(settings_from(config, index_dir))
    engine.store.check()
    table = engine.store.sources()
    if as_json:
        print_json({"store": engine.store.location, "sources": table})
        return
    for source, entry in sorted(table.items()):
        date = f", {entry['published']}" if entry.get("published") else ""
        passages = plural(entry.get("passages", 0), "passage")
        cut = ", incomplete: index it again, or remove it" if entry.get("incomplete") else ""
        out.print(f"{source}  {entry.get('title', '')} ({passages}{date}{cut})", markup=False)
    out.print(f"{plural(len(table), 'article')} in {engine.store.location}.", markup=False)


def remove(
    names: Annotated[
        list[str], typer.Argument(metavar="SOURCE...", help="Articles to delete, as `qabot sources` names them.")
    ],
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete articles and their passages from the index."""
    engine = engine_for(settings_from(config, index_dir))
    report = index_with_progress(lambda progress: engine.remove_sources(names, progress=progress), as_json)
    if as_json:
        print_json({"removed": report.sources_dropped, "passages_total": report.passages_total})
        return
    out.print(
        f"Removed {plural(report.sources_dropped, 'article')}; "
        f"{plural(report.passages_total, 'passage')} left in {engine.store.location}.",
        markup=False,
    )


def store_copy(
    to: Annotated[str, typer.Option("--to", metavar="BACKEND", help="Where to copy the index: milvus.")] = "milvus",
    index_dir: IndexOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy the index folder (index.dir) into Milvus (store.uri, store.collection) without reading the articles again.

    The Milvus collection is replaced. Then set store.backend = "milvus" to answer from it.
    """
    if to != "milvus":
        raise QabotError(f"cannot copy the index to {to}: only --to milvus is possible", exit_code=2)
    from retrieval.stores.configured import copy_embedded_to_milvus

    settings = settings_from(config, index_dir)
    engine = engine_for(settings)
    with progress_bars(err, as_json) as update:
        copied = copy_embedded_to_milvus(settings, engine.embedding_id, engine.dimension, update)
    where = f"Milvus collection {settings.store.collection} at {settings.store_uri}"
    if as_json:
        print_json({"copied": copied, "to": where})
        return
    out.print(f'Copied {plural(copied, "passage")} to {where}; set store.backend = "milvus" to use it.', markup=False)


FeedUrl = Annotated[str, typer.Argument(metavar="URL", help="The feed's http(s) address (RSS or Atom).")]


def feeds_add(url: FeedUrl, config: ConfigOpt = None) -> None:
    """Add a feed for `qabot refresh` to read (kept in <data.dir>/feeds.json, beside the config's feeds.urls)."""
    from retrieval.ingest.feeds import FeedList

    added = FeedList(settings_from(config)).add(url)
    out.print(f"Added {url}." if added else f"{url} is already listed.", markup=False)


def feeds_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List the feeds: those in the config file and those added with `qabot feeds add`."""
    from bot.web_commands import feed_rows

    rows = feed_rows(settings_from(config))
    if as_json:
        print_json(rows)
        return
    for row in rows:
        out.print(f"{row['url']}  ({row['from']})", markup=False, soft_wrap=True)
    if not rows:
        out.print("No feeds yet: add one with `qabot feeds add URL`.", markup=False)


def feeds_remove(url: FeedUrl, config: ConfigOpt = None) -> None:
    """Remove a feed added with `qabot feeds add` (those of the config file are removed there)."""
    from retrieval.ingest.feeds import FeedList

    FeedList(settings_from(config)).remove(url)
    out.print(f"Removed {url}.", markup=False)
