"""The results: the summary (JSON-ready), the console table, and the `--report DIR` Markdown page and plots."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

from bot.evaluation.followups import follow_up_figures, follow_ups_line
from bot.evaluation.metrics import (
    QUESTION_TYPES,
    alternative_figures,
    expected_calibration_error,
    failure_reason,
    percentile,
    reliability_table,
    retrieval_scores,
    score_question,
)
from bot.evaluation.runner import QuestionResult
from bot.words import plural

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_FILE = "report.md"
BY_TYPE_PLOT = "metrics_by_type.png"
LATENCY_PLOT = "latency.png"
RELIABILITY_PLOT = "reliability.png"
PLOTTED_METRICS = ("exact_match", "f1", "evidence_hit", "recall_at_1")

# (summary key, column label, name): the metrics shown in the console table and the report.
SUMMARY_METRICS = (
    ("exact_match", "EM", "exact match"),
    ("f1", "F1", "F1"),
    ("evidence_hit", "evid", "evidence hit"),
    ("no_answer_accuracy", "no-ans", "no-answer accuracy"),
    ("recall_at_1", "R@1", "recall@1"),
    ("recall_at_5", "R@5", "recall@5"),
    ("mrr", "MRR", "MRR"),
)
METRICS_LEGEND = (
    "EM, F1: SQuAD exact match and token F1. evid: a gold answer is in the answer or its sentence. "
    "no-ans: abstained where the corpus has no answer. R@1, R@5, MRR: rank of the gold paragraph. "
    "p50, p95: latency in ms."
)


def _mean(values: Iterable[float | bool | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _aggregate(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in records if r["gold"]]
    return {
        "n_questions": len(records),
        "n_answerable": len(answerable),
        "n_no_answer": len(records) - len(answerable),
        "n_with_gold_paragraph": sum(r["recall_at_1"] is not None for r in records),
        "exact_match": _mean(r["exact_match"] for r in records),
        "f1": _mean(r["f1"] for r in records),
        "has_answer_exact_match": _mean(r["exact_match"] for r in answerable),
        "has_answer_f1": _mean(r["f1"] for r in answerable),
        "evidence_hit": _mean(r["evidence_hit"] for r in records),
        "gold_in_passages": _mean(r["gold_in_passages"] for r in records),
        "no_answer_accuracy": _mean(r["no_answer_correct"] for r in records),
        "abstained": _mean(r["abstained"] for r in records),
        "recall_at_1": _mean(r["recall_at_1"] for r in records),
        "recall_at_5": _mean(r["recall_at_5"] for r in records),
        "mrr": _mean(r["reciprocal_rank"] for r in records),
        "latency_ms_p50": percentile([r["latency_ms"] for r in records], 50),
        "latency_ms_p95": percentile([r["latency_ms"] for r in records], 95),
    }


def summarize(results: Sequence[QuestionResult], questions_file: Path | str = "") -> dict[str, Any]:
    """The whole evaluation as one JSON-ready dict: overall metrics, `by_type`, every question's record."""
    records = [score_question(result) for result in results]
    # Retrieval is judged where the gold paragraph is known and holds an answer.
    judged = [r for r in records if r["gold"] and r["gold_source"]]
    scores = retrieval_scores([r["gold_source"] for r in judged], [r["retrieved_sources"] for r in judged])
    for index, record in enumerate(judged):
        record["recall_at_1"] = scores["recall_at_1"][index]
        record["recall_at_5"] = scores["recall_at_5"][index]
        record["reciprocal_rank"] = scores["mrr"][index]
    for record in records:
        record["failure"] = failure_reason(record)
    by_type = {
        kind: _aggregate([r for r in records if r["type"] == kind])
        for kind in QUESTION_TYPES
        if any(r["type"] == kind for r in records)
    }
    # Confidence against correctness, for the reader's span answers: right is F1 >= 0.5 with a gold
    # answer; an answer to a question that has none is wrong.
    spans = [r for r in records if r["kind"] == "extractive"]
    reliability = reliability_table([r["score"] for r in spans], [bool(r["gold"]) and r["f1"] >= 0.5 for r in spans])
    return {
        "questions_file": str(questions_file),
        **_aggregate(records),
        "answer_kinds": dict(Counter(r["kind"] for r in records)),
        "bands": band_figures(records),
        "alternatives": alternative_figures(records),
        "reliability": reliability,
        "expected_calibration_error": expected_calibration_error(reliability) if reliability else None,
        "by_type": by_type,
        "follow_ups": follow_up_figures(results, records),
        "questions": records,
    }


def band_figures(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """For each confidence band (sure, unsure, none): its share of the questions and of the answerable
    ones, and how often its answers were right (F1 >= 0.5 with a gold answer; an answer to a question
    that has none is wrong); and the share of sure answers that are wrong."""
    figures: dict[str, Any] = {}
    answerable = [r for r in records if r["gold"]]
    for band in ("sure", "unsure", "none"):
        members = [r for r in records if r["confidence"] == band]
        right = [bool(r["gold"]) and r["f1"] >= 0.5 for r in members]
        figures[band] = {
            "answers": len(members),
            "share": len(members) / len(records) if records else None,
            "share_of_answerable": (sum(r in members for r in answerable) / len(answerable) if answerable else None),
            "right": _mean(right) if band != "none" else None,
        }
    sure_right = figures["sure"]["right"]
    figures["sure_wrong"] = 1 - sure_right if sure_right is not None else None
    return figures


# ---------------------------------------------------------------------------------------------------------
# The console table


def format_metric(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_table(summary: dict[str, Any]) -> Table:
    """The metrics for each question type and for all questions; "–" where a metric does not apply."""
    table = Table(
        title=f"Evaluation of {plural(summary['n_questions'], 'question')}",
        title_justify="left",
        caption=METRICS_LEGEND,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        show_edge=False,
    )
    table.add_column("type", no_wrap=True)
    for header in ("n", *(label for _, label, _ in SUMMARY_METRICS), "p50", "p95"):
        table.add_column(header, justify="right", no_wrap=True)

    def add(name: str, metrics: dict[str, Any], style: str | None = None) -> None:
        table.add_row(
            name,
            str(metrics["n_questions"]),
            *(format_metric(metrics[key]) for key, _, _ in SUMMARY_METRICS),
            format_metric(metrics["latency_ms_p50"], 0),
            format_metric(metrics["latency_ms_p95"], 0),
            style=style,
        )

    for name, metrics in summary["by_type"].items():
        add(name, metrics)
    table.add_section()
    add("all", summary, style="bold")
    return table


def bands_line(summary: dict[str, Any]) -> str:
    """The confidence bands in one line: each band's share of the answerable questions and how often
    its answers were right, and the share of sure answers that were wrong."""
    bands = summary["bands"]
    parts = [
        f"{band} {format_metric(bands[band]['share_of_answerable'])} of answerable"
        + (f" (right {format_metric(bands[band]['right'])})" if band != "none" else "")
        for band in ("sure", "unsure", "none")
    ]
    wrong = format_metric(bands["sure_wrong"])
    return f"Bands: {'; '.join(parts)}; sure answers wrong: {wrong}. {alternatives_line(summary)}"


def alternatives_line(summary: dict[str, Any]) -> str:
    """What the alternatives (/more) add, in one line."""
    more = summary["alternatives"]
    return (
        f"Alternatives: with {format_metric(more['with_alternatives'])} of answerable; "
        f"EM of the answer or one of them {format_metric(more['exact_match_top_3'])}."
    )


# ---------------------------------------------------------------------------------------------------------
# The --report folder: report.md and its plots


def write_report(summary: dict[str, Any], directory: Path) -> Path:
    """Write report.md and its plots into `directory` (created if needed); returns the report's path."""
    directory.mkdir(parents=True, exist_ok=True)
    plot_metrics_by_type(summary, directory / BY_TYPE_PLOT)
    plot_latency(summary, directory / LATENCY_PLOT)
    if summary.get("reliability"):
        plot_reliability(summary, directory / RELIABILITY_PLOT)
    report = directory / REPORT_FILE
    report.write_text(markdown_report(summary), encoding="utf-8")
    return report


def _figure(width: float, height: float) -> Figure:
    # matplotlib is imported only when a report is asked for.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _save(figure: Figure, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # The Agg canvas renders without a display and without touching pyplot's global state.
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def plot_metrics_by_type(summary: dict[str, Any], path: Path) -> None:
    """Grouped bars: each plotted metric for each question type (metrics that do not apply are left out)."""
    types = list(summary["by_type"])
    figure = _figure(9, 4.5)
    axes = figure.add_subplot()
    width = 0.8 / len(PLOTTED_METRICS)
    names = {key: name for key, _, name in SUMMARY_METRICS}
    for offset, metric in enumerate(PLOTTED_METRICS):
        values = [summary["by_type"][kind][metric] for kind in types]
        positions = [index + offset * width for index, value in enumerate(values) if value is not None]
        axes.bar(positions, [v for v in values if v is not None], width, label=names[metric])
    axes.set_xticks([index + 0.4 - width / 2 for index in range(len(types))])
    axes.set_xticklabels([f"{kind}\n(n={summary['by_type'][kind]['n_questions']})" for kind in types])
    axes.set_ylim(0, 1.2)
    axes.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    axes.set_ylabel("score")
    axes.set_title("Metrics by question type")
    axes.legend(loc="upper center", ncol=len(PLOTTED_METRICS), fontsize="small", frameon=False)
    _save(figure, path)


def plot_latency(summary: dict[str, Any], path: Path) -> None:
    """A histogram of the time each answer took, with the p50 and p95 marked."""
    latencies = [record["latency_ms"] for record in summary["questions"]]
    figure = _figure(7, 4)
    axes = figure.add_subplot()
    axes.hist(latencies, bins=min(30, max(5, len(latencies) // 5)), color="tab:blue")
    for key, style in (("latency_ms_p50", "--"), ("latency_ms_p95", ":")):
        value = summary[key]
        if value is not None:
            axes.axvline(value, color="black", linestyle=style, label=f"{key[-3:]} {value:.0f} ms")
    axes.set_xlabel("latency per question (ms)")
    axes.set_ylabel("questions")
    axes.set_title("Answer latency")
    axes.legend()
    _save(figure, path)


def plot_reliability(summary: dict[str, Any], path: Path) -> None:
    """The reader's confidence against how often its answers were right, bin by bin (the diagonal is ideal)."""
    table = summary["reliability"]
    figure = _figure(5, 5)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.plot([r["confidence"] for r in table], [r["right"] for r in table], marker="o", label="answers")
    for row in table:
        axes.annotate(
            str(row["answers"]),
            (row["confidence"], row["right"]),
            fontsize=7,
            xytext=(3, -9),
            textcoords="offset points",
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence")
    axes.set_ylabel("share right (F1 >= 0.5)")
    axes.set_title("Reader confidence (reliability)")
    axes.legend(loc="upper left", fontsize="small")
    _save(figure, path)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return lines


def markdown_report(summary: dict[str, Any]) -> str:
    """The report's Markdown: overall metrics, the per-type table, the plots, and every failure."""
    metric_rows = [[f"{name} (`{key}`)", format_metric(summary[key])] for key, _, name in SUMMARY_METRICS]
    metric_rows += [
        ["gold answer in the retrieved passages (`gold_in_passages`)", format_metric(summary["gold_in_passages"])],
        ["latency p50 (ms)", format_metric(summary["latency_ms_p50"], 0)],
        ["latency p95 (ms)", format_metric(summary["latency_ms_p95"], 0)],
    ]
    type_rows = [
        [kind, metrics["n_questions"], *(format_metric(metrics[key]) for key, _, _ in SUMMARY_METRICS)]
        for kind, metrics in summary["by_type"].items()
    ]
    kinds = ", ".join(f"{count} {kind}" for kind, count in summary["answer_kinds"].items())
    lines = [
        f"# Evaluation of {summary['questions_file'] or 'a question set'}",
        "",
        f"{plural(summary['n_questions'], 'question')}: {summary['n_answerable']} with an answer, "
        f"{summary['n_no_answer']} without. Answers: {kinds}.",
        "",
        *_table(["metric", "value"], metric_rows),
        "",
        METRICS_LEGEND,
        "",
        "## By question type",
        "",
        *_table(["type", "n", *(label for _, label, _ in SUMMARY_METRICS)], type_rows),
        "",
        f"![Metrics by question type]({BY_TYPE_PLOT})",
        "",
        f"![Latency]({LATENCY_PLOT})",
        "",
    ]
    if summary.get("reliability"):
        rows = [
            [f"{r['from']:.1f}–{r['to']:.1f}", r["answers"], f"{r['confidence']:.2f}", f"{r['right']:.2f}"]
            for r in summary["reliability"]
        ]
        lines += [
            "## Confidence",
            "",
            "The reader's span answers by confidence: how often each bin's answers were right (F1 >= 0.5). "
            f"Expected calibration error: {summary['expected_calibration_error']:.3f}.",
            "",
            *_table(["confidence", "answers", "mean confidence", "share right"], rows),
            "",
            f"![Reliability]({RELIABILITY_PLOT})",
            "",
        ]
    if summary.get("bands"):
        bands = summary["bands"]
        rows = [
            [
                band,
                bands[band]["answers"],
                format_metric(bands[band]["share_of_answerable"]),
                format_metric(bands[band]["right"]),
            ]
            for band in ("sure", "unsure", "none")
        ]
        lines += [
            "## Confidence bands",
            "",
            "How each band of answers fared: its share of the answerable questions and how often its answers "
            f"were right (F1 >= 0.5). Sure answers that were wrong: {format_metric(bands['sure_wrong'])}.",
            "",
            *_table(["band", "answers", "share of answerable", "share right"], rows),
            "",
            alternatives_line(summary),
            "",
        ]
    if summary.get("follow_ups"):
        lines += ["## Follow-up questions", "", follow_ups_line(summary["follow_ups"]), ""]
    failed = [record for record in summary["questions"] if record["failure"]]
    lines += [f"## Failures ({len(failed)})", ""]
    if failed:
        rows = [
            [
                record["id"],
                record["question"],
                " / ".join(record["gold"]) or "(no answer)",
                record["prediction"] or "(abstained)",
                record["failure"],
                ", ".join(dict.fromkeys(record["retrieved_titles"])),
            ]
            for record in failed
        ]
        lines += _table(["id", "question", "gold", "prediction", "why", "retrieved"], rows)
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"
