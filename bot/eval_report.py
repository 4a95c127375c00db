"""The `qabot eval --report DIR` report: a Markdown page with the failures listed, and two PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.evaluation import METRICS_LEGEND, SUMMARY_METRICS, format_metric

REPORT_FILE = "report.md"
BY_TYPE_PLOT = "metrics_by_type.png"
LATENCY_PLOT = "latency.png"
PLOTTED_METRICS = ("exact_match", "f1", "evidence_hit", "recall_at_1")


def write_report(summary: dict[str, Any], directory: Path) -> Path:
    """Write report.md and its plots into `directory` (created if needed); returns the report's path."""
    directory.mkdir(parents=True, exist_ok=True)
    plot_metrics_by_type(summary, directory / BY_TYPE_PLOT)
    plot_latency(summary, directory / LATENCY_PLOT)
    report = directory / REPORT_FILE
    report.write_text(markdown_report(summary), encoding="utf-8")
    return report


def _save(figure: Figure, path: Path) -> None:
    # The Agg canvas renders without a display and without touching pyplot's global state.
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def plot_metrics_by_type(summary: dict[str, Any], path: Path) -> None:
    """Grouped bars: each plotted metric for each question type (metrics that do not apply are left out)."""
    types = list(summary["by_type"])
    figure = Figure(figsize=(9, 4.5))
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
    figure = Figure(figsize=(7, 4))
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
        f"{summary['n_questions']} questions: {summary['n_answerable']} with an answer, "
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
