"""Fit the trained reader's confidence on held-out data and write its model card:
`python -m training.calibrate --data DIR --model models/qabot-reader [--dev XQUAD]`.

A span's confidence is Haystack's: sigmoid(calibration_factor * (start + end logit)). A factor
and a bias are fitted (Platt scaling) on articles the reader never saw in training (`--held-out`,
the same split as `training.train_reader`), so that answers scored about 0.8 are right (F1 >= 0.5
with a gold answer) about 80% of the time; the bias is written into the model's weights as a shift
of every start logit, so the factor alone gives the calibrated score. Writes the model back.
Then the no-answer model, `min_reader_score` and `fallback_sentence_score` are fitted end to end on
the same held-out articles (`training.no_answer`), to balance answering and abstaining.
Writes `calibration.json`, `reliability.png` and `README.md` (the model card) into the model folder.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np

from retrieval.answering.rules import DEFAULT_SURE_COVERAGE
from training.data import make_examples, read_squad_folder, split_held_out
from training.gold_paragraph import best_spans, evaluate_squad, read_dev
from training.model_card import write_model_card
from training.no_answer import fit_logistic, fit_no_answer
from training.train_reader import DEFAULT_CHECKPOINTS
from training.weights import write_model

CALIBRATION_FILE = "calibration.json"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def fit_platt(logits: np.ndarray, right: np.ndarray) -> tuple[float, float]:
    """Platt scaling: the a and b that minimise the log loss of sigmoid(a * logit + b) against `right`."""
    weights, bias = fit_logistic(logits[:, None], right)
    return min(max(float(weights[0]), 0.01), 3.0), bias


def _training_setup(model: Path) -> dict | None:
    path = model / "training.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def calibrate(args: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from bot.evaluation.metrics import expected_calibration_error, f1_score, reliability_table
    from bot.evaluation.report import plot_reliability

    paragraphs = read_squad_folder(args.data)
    if args.limit:
        paragraphs = paragraphs[: args.limit]
    _, held_out = split_held_out(paragraphs, args.held_out, args.seed)  # chosen over every file, as in training
    if args.fit_sources:
        held_out = [p for p in held_out if p.source in args.fit_sources]
        if not held_out:
            raise SystemExit(f"--fit-sources: no held-out article in {', '.join(args.fit_sources)}")
    if args.no_answer_only:
        return refit_no_answer(args, held_out)
    # about half of the windows unanswerable: on topic, from elsewhere in the article, or off topic
    examples = make_examples(
        held_out, args.seed + 1, same_paragraph_negatives=0.4, other_article_negatives=0.2, same_article_negatives=0.4
    )
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
    factor, bias = fit_platt(logits, right)
    # Haystack scores a span sigmoid(factor * (start + end)): the bias goes into the weights, as a
    # shift of every start logit (which moves no span's rank), so that both readers, ONNX and
    # Haystack's own, give the calibrated confidence with nothing but the factor.
    shift = bias / factor
    with torch.no_grad():
        model.qa_outputs.bias[0] += shift
    write_model(model, tokenizer, args.model, _training_setup(args.model))
    scores = _sigmoid(factor * logits + bias)
    table = reliability_table(scores.tolist(), right.tolist())
    # the end-to-end readings must score spans as the bot will, with this factor (Haystack's default
    # of 0.1 would squeeze every confidence towards one half)
    (args.model / CALIBRATION_FILE).write_text(
        json.dumps({"calibration_factor": round(factor, 4), "start_logit_shift": round(shift, 4)}), encoding="utf-8"
    )
    no_answer = fit_no_answer(held_out, args.model, args.questions, args.answerable_share)
    result = {
        "calibration_factor": round(factor, 4),
        "start_logit_shift": round(shift, 4),
        **_decision(no_answer, args),
        "held_out": {
            "sources": sorted({p.source for p in held_out}),
            "articles": len({p.group for p in held_out}),
            "windows": len(examples),
            "unanswerable": int((~answerable).sum()),
            "expected_calibration_error": round(expected_calibration_error(table), 4),
        },
        "held_out_end_to_end": no_answer["figures"],
        "reliability": table,
        "date": datetime.date.today().isoformat(),
    }
    for number, dev_file in enumerate(args.dev):  # the first is the card's main dev set
        figures = {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in evaluate_squad(model, tokenizer, read_dev(dev_file)).items()
        }
        if number == 0:
            result["dev_gold_paragraph"] = figures
        else:
            result.setdefault("other_dev_gold_paragraph", {})[dev_file.name] = figures
    (args.model / CALIBRATION_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot_reliability({"reliability": table}, args.model / "reliability.png")
    write_model_card(args.model, args.log or [DEFAULT_CHECKPOINTS / "train-log.jsonl"], data=args.data)
    return result


BAND_KEYS = ("sure_model", "sure_threshold", "sure_confidence", "sure_coverage")


def _decision(no_answer: dict, args: argparse.Namespace) -> dict:
    """What calibration.json says about deciding: the no-answer model and thresholds, and the band:
    the fitted sure model, or the fixed thresholds given (`--sure-confidence`, `--sure-coverage`)."""
    decision = {
        "min_reader_score": no_answer["min_reader_score"],
        "fallback_sentence_score": no_answer["fallback_sentence_score"],
        "no_answer_model": no_answer["model"],
    }
    if args.answerable_share is not None:
        decision["answerable_share"] = args.answerable_share
    if args.sure_confidence is not None:
        decision.update(sure_confidence=args.sure_confidence, sure_coverage=args.sure_coverage)
    else:
        decision.update(sure_model=no_answer["sure_model"], sure_threshold=no_answer["sure_threshold"])
    return decision


def refit_no_answer(args: argparse.Namespace, held_out: list) -> dict:
    """Fit the no-answer and sure models and `min_reader_score` again, keeping the confidence fit and the
    weights (for example after a change to retrieval or to how windows are read)."""
    path = args.model / CALIBRATION_FILE
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run training.calibrate without --no-answer-only first")
    result = json.loads(path.read_text(encoding="utf-8"))
    for stale in ("answerable_right", "unanswerable_abstained"):  # an older threshold's, on windows
        result.get("held_out", {}).pop(stale, None)
    no_answer = fit_no_answer(held_out, args.model, args.questions, args.answerable_share)
    for key in BAND_KEYS + ("answerable_share",):  # the earlier fit's band may be of the other kind
        result.pop(key, None)
    result.update(
        **_decision(no_answer, args),
        held_out_end_to_end=no_answer["figures"],
        date=datetime.date.today().isoformat(),
    )
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    write_model_card(args.model, args.log or [DEFAULT_CHECKPOINTS / "train-log.jsonl"], data=args.data)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the training data folder (its held-out part is used)")
    parser.add_argument("--model", type=Path, default=Path("models/qabot-reader"))
    parser.add_argument(
        "--dev", type=Path, nargs="+", default=[], help="SQuAD-format dev files for the EM/F1 in the model card"
    )
    parser.add_argument("--held-out", type=float, default=0.04)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit", type=int)
    parser.add_argument(
        "--answerable-share",
        type=float,
        help="the share of questions the articles are expected to answer (default: the held-out readings' own)",
    )
    parser.add_argument(
        "--sure-confidence",
        type=float,
        help="a fixed band instead of the fitted sure model: sure from this span confidence ...",
    )
    parser.add_argument(
        "--sure-coverage",
        type=float,
        default=DEFAULT_SURE_COVERAGE,
        help="... with this share of the question's terms (by rarity) in the span's passage",
    )
    parser.add_argument(
        "--fit-sources",
        nargs="+",
        default=[],
        metavar="STEM",
        help="fit on the held-out articles of these files only (e.g. the kinds of text the bot reads)",
    )
    parser.add_argument("--questions", type=int, help="read at most this many held-out questions end to end")
    parser.add_argument(
        "--no-answer-only",
        action="store_true",
        help="fit only the no-answer and sure models and the thresholds again, keeping the confidence fit and weights",
    )
    parser.add_argument(
        "--log", type=Path, action="append", default=[], help="each training stage's train-log.jsonl, in order"
    )
    args = parser.parse_args(argv)
    if args.answerable_share is not None and not 0.0 < args.answerable_share < 1.0:
        parser.error("--answerable-share must lie between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(json.dumps(calibrate(args), indent=2))


if __name__ == "__main__":
    main()
