"""The reader's model card (README.md beside its weights), written from the training log and
`calibration.json`, so that every figure in it is the one measured."""

from __future__ import annotations

import json
from pathlib import Path

from training.card_data import card_licence, data_table


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _stage(log: list[dict]) -> dict:
    """What one training run (a stage) logged: its setup, windows, steps and schedule changes."""
    start = next((r for r in reversed(log) if r.get("event") == "start"), {})
    steps = [r for r in log if "loss" in r]
    return {
        "setup": start.get("setup", {}),
        "examples": start.get("examples", "?"),
        "no_answer_share": start.get("no_answer_share", "?"),
        "steps": steps[-1]["step"] if steps else "?",
        "loss": steps[-1]["loss"] if steps else "?",
        "reschedules": [r for r in log if r.get("event") == "rescheduled"],
        **({"files": start["files"]} if "files" in start else {}),
    }


STAGES_FILE = "training-stages.json"


def _setting(setup: dict, key: str) -> str:
    value = setup.get(key)
    if key == "sources":
        return ", ".join(value) if value else "all"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return " + ".join(str(v) for v in value)
    return "-" if value is None else str(value)


def training_stages(model: Path, log_paths: list[Path]) -> list[dict]:
    """Each stage's summary from its training log; kept beside the weights (`training-stages.json`),
    so the card can be written again where the logs are not (a refit on another machine)."""
    logs = [read_log(path) for path in log_paths]
    kept = model / STAGES_FILE
    known = json.loads(kept.read_text(encoding="utf-8")) if kept.is_file() else []
    if any(logs):
        # a stage whose log is not here (trained elsewhere, earlier) keeps its kept summary
        stages = [_stage(log) if log or n >= len(known) else known[n] for n, log in enumerate(logs)]
        kept.write_text(json.dumps(stages, indent=2) + "\n", encoding="utf-8")
        return stages
    return known or [_stage([])]


def trained_files(stages: list[dict], data: Path | None) -> dict[str, int]:
    """Questions trained on per file: as the stages logged them, else counted in the data folder (its
    held-out articles left out), else none."""
    logged: dict[str, int] = {}
    for stage in stages:
        for stem, questions in stage.get("files", {}).items():
            logged[stem] = max(questions, logged.get(stem, 0))
    if logged or data is None:
        return logged
    from training.data import questions_by_source, read_squad_folder, split_held_out

    setup = stages[-1]["setup"]
    trained, _ = split_held_out(read_squad_folder(data), setup.get("held_out", 0.04), setup.get("seed", 13))
    return {k: v for k, v in questions_by_source(trained).items() if not setup.get("sources") or k in setup["sources"]}


def write_model_card(
    model: Path, log_paths: list[Path], end_to_end: dict | None = None, data: Path | None = None
) -> Path:
    """Write `model/README.md` from the training logs, one per stage (a later stage starts from the
    weights of the one before); `end_to_end` adds figures measured through qabot's own pipeline;
    `data` (the training folder) counts the questions of stages that did not log their files."""
    calibration = json.loads((model / "calibration.json").read_text(encoding="utf-8"))
    stages = training_stages(model, log_paths)
    beside = model / "training.json"  # the last stage's setup, or the soup's, beside the weights
    written = json.loads(beside.read_text(encoding="utf-8")) if beside.is_file() else {}
    if not stages[-1]["setup"] and written:
        stages[-1]["setup"] = written
    files = trained_files(stages, data)
    # a soup (`training.average`) names its parts and their weights
    soup = {key: written[key] for key in ("average_of", "weights") if "average_of" in written and key in written}
    run = "part" if soup else "stage"
    dev = calibration.get("dev_gold_paragraph", {})
    held = calibration["held_out"]
    lines = [
        "---",
        f"license: {card_licence(files)}",
        "language: en",
        "pipeline_tag: question-answering",
        "base_model: sentence-transformers/all-MiniLM-L6-v2",
        "---",
        "",
        "# qabot-reader",
        "",
        "qabot's extractive question-answering model: given a question and a few sentences, it marks the",
        "answer's span, or abstains when the sentences do not hold it (trained SQuAD 2.0 style). It is",
        "all-MiniLM-L6-v2 (6 layers, 22 M parameters) fine-tuned for span extraction, small enough to",
        "read a window of sentences in a few milliseconds on a CPU, and it ships with qabot so that",
        "answers work offline. Weights are stored in fp16 and load as float32.",
        "",
        "Reproduce it with `make reader` (from the repository root, with the training data in",
        f"`../shared/qa-train`): `python -m training.train_reader` once per {run} (see Hyper-parameters),",
        ("then `python -m training.average`, " if soup else "then ")
        + "`python -m training.calibrate` and `python -m training.bands`.",
        "",
        "## Training data",
        "",
        data_table(files),
        "Windows of 1 to 6 whole sentences around each answer (question first, at most "
        f"{stages[-1]['setup'].get('max_length', 192)} tokens). Unanswerable windows are made from the same data: the",
        "answer's window without the answer's sentence (on topic), a window from another article, and",
        "(when a stage says `same_article_negatives`) a window from another paragraph of the same article,",
        "and (when it says `tempting_negatives`) a window of another article that shares the question's rare",
        "terms and holds something of the answer's type (a number, a name).",
        *(
            [
                "Real unanswerable questions (SQuAD 2.0's, written by people) are read against the window of",
                "their plausible answer.",
            ]
            if "squad-train-pieces" in files
            else []
        ),
        "`source_weights` below 1 take that share of a file's windows each epoch (a different share each",
        "time). Development files (`*-dev.json`) are never read for training.",
        f"Calibration used {held['articles']} articles held out of training"
        + (f", from {', '.join(held['sources'])}." if held.get("sources") else "."),
        "",
        "## Hyper-parameters",
        "",
        (
            f"The model is the average of the weights of {len(stages)} runs, each from the base encoder (a model "
            f"soup, `python -m training.average`, weights {_setting(soup, 'weights')}); the columns are its parts."
            if soup
            else "Training ran in stages; each later stage starts from the weights of the one before."
        ),
        "",
        "| setting | " + " | ".join(f"{run} {n}" for n in range(1, len(stages) + 1)) + " |",
        "|---|" + "---|" * len(stages),
    ]
    keys = (
        "sources",
        "source_weights",
        "average_of",
        "weights",
        "epochs",
        "batch_size",
        "lr",
        "warmup",
        "max_length",
        "freeze_layers",
        "layer_decay",
        "same_article_negatives",
        "tempting_negatives",
        "seed",
    )
    for key in keys:
        if any(key in stage["setup"] for stage in stages):
            lines.append(f"| {key} | " + " | ".join(_setting(stage["setup"], key) for stage in stages) + " |")
    lines += [
        "| training windows (unanswerable share) | "
        + " | ".join(f"{stage['examples']} ({stage['no_answer_share']})" for stage in stages)
        + " |",
        "| steps, final running loss | " + " | ".join(f"{stage['steps']}, {stage['loss']}" for stage in stages) + " |",
    ]
    lines += [
        f"| schedule change | {run} {n}: at step {r['step']} the run went from {r['from_epochs']} to {r['epochs']} "
        "epochs (the learning rate follows the new schedule from there) |"
        for n, stage in enumerate(stages, 1)
        for r in stage["reschedules"]
    ]
    lines += [
        "",
        f"| all {run}s | |",
        "|---|---|",
        "| optimiser | AdamW, weight decay 0.01, linear warm-up and decay, gradient clipping at 1.0 |",
        "| loss | start/end cross-entropy (no answer = [CLS]) + binary loss on sigmoid(start + end), "
        "the score Haystack's reader gives a span |",
        "| frozen | word embeddings (and the embeddings and lowest layers, as `freeze_layers` says) |",
        "",
        "## Figures",
        "",
        "Dev figures are on the XQuAD-en dev half (120 paragraphs, 612 questions) and, where named, on",
        "TyDi QA GoldP English dev; both were used to choose settings and never for training.",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    if dev:
        lines.append(f"| XQuAD dev, gold paragraph given: EM / F1 | {dev['em']:.3f} / {dev['f1']:.3f} |")
    for name, other in calibration.get("other_dev_gold_paragraph", {}).items():
        lines.append(
            f"| {name} ({other['questions']} questions), gold paragraph given: EM / F1 "
            f"| {other['em']:.3f} / {other['f1']:.3f} |"
        )
    for key, value in (end_to_end or {}).items():
        lines.append(f"| {key} | {value} |")
    e2e = calibration.get("held_out_end_to_end", {})
    no_answer = calibration.get("no_answer_model")
    minimum = calibration["min_reader_score"]
    if e2e:
        alone = e2e.get("confidence_alone", {})
        lines += [
            f"| held-out end to end ({e2e['questions']} questions, {e2e['unanswerable_readings']} made unanswerable): "
            f"answer in the sentence shown / span right / unanswerable abstained, at {minimum} with the no-answer "
            f"model | {e2e['answerable_evidence']} / {e2e['answerable_right']} / {e2e['unanswerable_abstained']} |",
            f"| the same with the confidence alone (best threshold {alone.get('min_reader_score', '?')}) "
            f"| {alone.get('answerable_evidence', '?')} / {alone.get('answerable_right', '?')} / "
            f"{alone.get('unanswerable_abstained', '?')} |",
        ]
        fallback = e2e.get("with_sentence_answers")
        if fallback and fallback.get("fallback_sentence_score", 1.0) < 1.0:
            lines.append(
                f"| the same with the no-answer model, answering with the best sentence where only the span's "
                f"confidence is too low and that sentence scores {fallback['fallback_sentence_score']} or more "
                f"({fallback['sentence_answers']} readings): answer in the sentence shown / unanswerable abstained "
                f"| {fallback['answerable_evidence']} / {fallback['unanswerable_abstained']} |"
            )
    lines += [
        f"| held-out windows: expected calibration error of the confidence | {held['expected_calibration_error']} |",
        "",
        "## Confidence",
        "",
        f"Confidence is sigmoid({calibration['calibration_factor']} × (start + end logit)), Haystack's span score with",
        "this model's calibration factor. Factor and bias were fitted on the held-out articles (Platt scaling);",
        f"the bias is in the weights, as a shift of {calibration.get('start_logit_shift', 0)} on every start logit,",
        "which changes no span's rank, so Haystack's own reader gives the same confidence.",
        "Right means F1 >= 0.5 against a gold answer.",
        "",
    ]
    lines += [
        "| confidence | answers | mean confidence | share right |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['from']:.1f}–{r['to']:.1f} | {r['answers']} | {r['confidence']:.2f} | {r['right']:.2f} |"
        for r in calibration["reliability"]
    ]
    lines += [
        "",
        "![reliability](reliability.png)",
        "",
    ]
    if no_answer:
        lines += [
            '## When qabot says "I don\'t know"',
            "",
            "qabot abstains when no-answer wins, that is when the chance that the sentences read hold an answer,",
            f"sigmoid({no_answer['reader']} × logit(confidence) + {no_answer['sentence']} × best sentence score"
            f" + {no_answer.get('agreement', 0.0)} × [the span lies in that sentence]"
            f" + {no_answer.get('margin', 0.0)} × that sentence's lead over the next"
            f" + {no_answer.get('coverage', 0.0)} × the question's coverage by the span's passage"
            f" + {no_answer.get('year', 0.0)} × [a year of the question contradicted]"
            f" {'−' if no_answer['bias'] < 0 else '+'} {abs(no_answer['bias'])}), is under one half, or when the",
            "span's confidence is under",
            f"`min_reader_score` ({minimum}). Both were fitted end to end on the held-out articles: qabot indexed",
            "them and answered each question as the bot does, and again with every retrieved passage that holds",
            "the answer taken away (`python -m training.calibrate`; `--no-answer-only` refits just these).",
            *([_share_line(calibration["answerable_share"])] if "answerable_share" in calibration else []),
            "The threshold balances answering (the answer in the sentence shown) against abstaining on the",
            "unanswerable readings. `answer.fitted_no_answer = false` uses Haystack's no-answer instead.",
            "",
        ]
        fallback_score = calibration.get("fallback_sentence_score")
        if isinstance(fallback_score, int | float) and fallback_score < 1.0:
            lines += [
                "When no-answer does not win and only the span's confidence is too low, the passages likely hold",
                "the answer but its exact words are unsure: qabot then answers with the best sentence (a sentence",
                f"answer) if that sentence scores {fallback_score} or more, a threshold chosen on the same readings",
                "(`answer.fallback_sentence_score`; 1 turns it off).",
                "",
            ]
    else:
        lines += [f'`min_reader_score` ({minimum}) is where qabot says "I don\'t know".', ""]
    lines += _bands_section(calibration) + _experiments_section(model)
    lines += [
        "## Limits",
        "",
        "English only. Trained on short windows: give it a few sentences, not a whole article. It is a",
        "small model: larger SQuAD 2.0 readers (e.g. deepset/roberta-base-squad2) are more accurate and",
        "are one setting away (`models.reader`) on a machine that can download them.",
        "",
        f"Trained and measured on {calibration['date']}.",
        "",
    ]
    card = model / "README.md"
    card.write_text("\n".join(lines), encoding="utf-8")
    return card


EXPERIMENTS_FILE = "experiments.json"


def _share_line(share: float) -> str:
    return (
        f"The fit assumes {share:.0%} of questions have an answer in the articles (`--answerable-share`): its bias"
        " moves from the readings' own share to it, and the thresholds weigh answering and abstaining by it."
    )


def _bands_section(calibration: dict) -> list[str]:
    lines = [
        "## Confidence bands",
        "",
        "An answer qabot gives is *sure* or *unsure* (said as such, with its sentence).",
    ]
    sure, figures = calibration.get("sure_model"), calibration.get("held_out_end_to_end", {}).get("sure", {})
    if "sure_confidence" in calibration or not sure:
        lines += [
            f"Sure when the span's confidence reaches {calibration.get('sure_confidence', 0.85)} and its passage holds",
            f"{calibration.get('sure_coverage', 0.6)} of the question's terms (weighed by rarity), with no year of the",
            "question contradicted: fixed thresholds (`sure_confidence`, `sure_coverage`), chosen on the dev sets.",
        ]
    else:
        lines += [
            f"Sure when the sure model's chance that the answer is right reaches {calibration['sure_threshold']}: a",
            "logistic regression on the no-answer model's signals, fitted on the held-out answered readings, with",
            "the threshold where at most 8% of sure answers there are wrong (there: "
            f"{figures.get('sure_of_answerable', '?')} of answerable questions sure, {figures.get('sure_wrong', '?')} "
            "of sure answers wrong).",
        ]
    return [*lines, ""]


def _experiments_section(model: Path) -> list[str]:
    """Each recipe change tried, one at a time, with what it measured (`experiments.json`)."""
    path = model / EXPERIMENTS_FILE
    if not path.is_file():
        return []
    rows = json.loads(path.read_text(encoding="utf-8"))
    lines = [
        "## Recipe changes tried",
        "",
        "One change at a time; gold-paragraph EM / F1 on the dev sets (XQuAD-en dev half, TyDi QA GoldP",
        "English dev), which chose the settings and were never trained on.",
        "",
        "| change | XQuAD dev | TyDi dev | kept |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {row['change']} | {row.get('xquad', '-')} | {row.get('tydi', '-')} | {row.get('kept', 'no')} |"
        for row in rows
    ]
    return [*lines, ""]


def main(argv: list[str] | None = None) -> None:
    """`python -m training.model_card --model DIR --log STAGE1 --log STAGE2 [--figures FILE]`: write the
    card again, for example with end-to-end figures (a JSON object of measure -> value) measured later."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/qabot-reader"))
    parser.add_argument("--log", type=Path, action="append", default=[], help="a stage's train-log.jsonl, in order")
    parser.add_argument("--figures", type=Path, help="JSON object of end-to-end figures to add to the table")
    parser.add_argument("--data", type=Path, help="the training data folder, for stages that did not log their files")
    args = parser.parse_args(argv)
    figures = json.loads(args.figures.read_text(encoding="utf-8")) if args.figures else None
    print(write_model_card(args.model, args.log, figures, args.data))


if __name__ == "__main__":
    main()
