"""Fit the trained reader's confidence on held-out data and write its model card:
`python -m training.calibrate --data DIR --model models/qabot-reader [--dev XQUAD]`.

A span's confidence is Haystack's: sigmoid(calibration_factor * (start + end logit)). The factor
is fitted on articles the reader never saw in training (`--held-out`, the same split as
`training.train_reader`), so that answers scored about 0.8 are right (F1 >= 0.5 with a gold
answer) about 80% of the time. The abstention threshold `min_reader_score` is chosen on the same
held-out windows, half of them made unanswerable, to balance answering and abstaining.
Writes `calibration.json`, `reliability.png` and `README.md` (the model card) into the model folder.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
from pathlib import Path

import numpy as np

from training.data import make_examples, read_squad_folder, split_held_out
from training.model_card import write_model_card
from training.train_reader import DEFAULT_CHECKPOINTS, best_spans, evaluate_squad, read_dev

CALIBRATION_FILE = "calibration.json"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def fit_factor(logits: np.ndarray, right: np.ndarray) -> float:
    """The factor that minimises the log loss of sigmoid(factor * logit) against `right`."""
    best, best_loss = 1.0, math.inf
    for factor in np.exp(np.linspace(math.log(0.01), math.log(3.0), 400)):
        p = np.clip(_sigmoid(factor * logits), 1e-7, 1 - 1e-7)
        loss = float(-np.mean(right * np.log(p) + (1 - right) * np.log(1 - p)))
        if loss < best_loss:
            best, best_loss = float(factor), loss
    return best


def reliability(scores: np.ndarray, right: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per confidence bin: how many answers, their mean confidence and the share that were right."""
    table = []
    for low in np.linspace(0, 1, bins, endpoint=False):
        inside = (scores >= low) & (scores < low + 1 / bins + (1e-9 if low + 1 / bins >= 1 else 0))
        if inside.any():
            table.append(
                {
                    "from": round(float(low), 2),
                    "to": round(float(low + 1 / bins), 2),
                    "answers": int(inside.sum()),
                    "confidence": round(float(scores[inside].mean()), 3),
                    "right": round(float(right[inside].mean()), 3),
                }
            )
    return table


def expected_calibration_error(table: list[dict[str, float]]) -> float:
    total = sum(row["answers"] for row in table)
    return sum(row["answers"] * abs(row["confidence"] - row["right"]) for row in table) / max(total, 1)


def choose_threshold(scores: np.ndarray, right: np.ndarray, answerable: np.ndarray) -> tuple[float, dict]:
    """The threshold with the best mean of (answerable questions answered right) and
    (unanswerable ones abstained on); never under 0.5, where Haystack's no-answer wins anyway."""
    best, best_value, best_figures = 0.5, -1.0, {}
    for threshold in np.arange(0.5, 0.96, 0.01):
        answered = scores >= threshold
        has_answer = float((answered & right.astype(bool))[answerable].mean())
        no_answer = float((~answered)[~answerable].mean())
        if (has_answer + no_answer) / 2 > best_value:
            best, best_value = round(float(threshold), 2), (has_answer + no_answer) / 2
            best_figures = {"answerable_right": round(has_answer, 3), "unanswerable_abstained": round(no_answer, 3)}
    return best, best_figures


def plot_reliability(table: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(4.5, 4.5), dpi=100)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.plot([r["confidence"] for r in table], [r["right"] for r in table], marker="o", label="reader")
    for row in table:
        axes.annotate(
            str(row["answers"]),
            (row["confidence"], row["right"]),
            fontsize=7,
            xytext=(3, -9),
            textcoords="offset points",
        )
    axes.set_xlabel("confidence")
    axes.set_ylabel("share right (F1 >= 0.5)")
    axes.set_title(title, fontsize=10)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def calibrate(args: argparse.Namespace) -> dict:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from bot.evaluation.metrics import f1_score

    paragraphs = read_squad_folder(args.data)
    if args.limit:
        paragraphs = paragraphs[: args.limit]
    _, held_out = split_held_out(paragraphs, args.held_out, args.seed)
    # Half of the held-out windows unanswerable (on topic or from another article).
    examples = make_examples(held_out, args.seed + 1, same_paragraph_negatives=0.6, other_article_negatives=0.4)
    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    model = AutoModelForQuestionAnswering.from_pretrained(str(args.model))
    spans = best_spans(model, tokenizer, [(e.question, e.context) for e in examples])
    logits = np.array([value for _, value in spans])
    answerable = np.array([e.answer_start is not None for e in examples])
    right = np.array(
        [
            float(e.answer_start is not None and f1_score(text, e.answers) >= 0.5)
            for (text, _), e in zip(spans, examples, strict=True)
        ]
    )
    factor = fit_factor(logits, right)
    scores = _sigmoid(factor * logits)
    table = reliability(scores, right)
    threshold, figures = choose_threshold(scores, right, answerable)
    result = {
        "calibration_factor": round(factor, 4),
        "min_reader_score": threshold,
        "held_out": {
            "articles": len({p.group for p in held_out}),
            "windows": len(examples),
            "unanswerable": int((~answerable).sum()),
            "expected_calibration_error": round(expected_calibration_error(table), 4),
            **figures,
        },
        "reliability": table,
        "date": datetime.date.today().isoformat(),
    }
    if args.dev:
        result["dev_gold_paragraph"] = {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in evaluate_squad(model, tokenizer, read_dev(args.dev)).items()
        }
    (args.model / CALIBRATION_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot_reliability(table, args.model / "reliability.png", "qabot-reader on held-out windows")
    write_model_card(args.model, args.log)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the training data folder (its held-out part is used)")
    parser.add_argument("--model", type=Path, default=Path("models/qabot-reader"))
    parser.add_argument("--dev", type=Path, help="SQuAD v1.1 dev file for the EM/F1 in the model card")
    parser.add_argument("--held-out", type=float, default=0.04)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--log", type=Path, default=DEFAULT_CHECKPOINTS / "train-log.jsonl")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(json.dumps(calibrate(args), indent=2))


if __name__ == "__main__":
    main()
