"""Choose the reader's band thresholds on dev sets (the confidence and coverage of a sure answer).

A sure answer needs its span's confidence and its question coverage to reach two thresholds; this
chooses them from `qabot eval --json-out` results:

    .venv/bin/qabot eval ../shared/eval/xquad-en-dev.json --index /tmp/qabot-xquad --json-out /tmp/xquad.json
    .venv/bin/qabot eval ../shared/qa-train/tydiqa-goldp-en-dev.json --index /tmp/qabot-tydi --json-out /tmp/tydi.json
    .venv/bin/python -m training.bands /tmp/xquad.json /tmp/tydi.json [--max-wrong 0.1] [--model DIR]

Over a grid of both thresholds it replays the band on every answer of each `--json-out` file: an
answer of the reader's (not a sentence answer, not "I don't know") is sure when its confidence and
coverage reach the thresholds. Right is as in `qabot eval`: F1 >= 0.5 against a gold answer. The
choice is the pair that makes the most answerable questions sure on the file where fewest are,
with at most `--max-wrong` of sure answers wrong on every file. The grid leaves out the two other
vetoes on a sure answer (a year the question names that the sentence contradicts; a one-word or
cut-short question), which dev questions seldom meet. `--model` writes the choice into the
reader's calibration.json, as `training.calibrate --sure-confidence --sure-coverage` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

CONFIDENCES = tuple(round(0.5 + 0.02 * i, 2) for i in range(25))  # 0.50 ... 0.98
COVERAGES = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8)


@dataclass(frozen=True)
class BandChoice:
    """A pair of thresholds and what it gives on each file: the share of answerable questions answered
    as sure and the share of those sure answers that are wrong."""

    confidence: float
    coverage: float
    sure: dict[str, float]
    wrong: dict[str, float]

    @property
    def least_sure(self) -> float:
        return min(self.sure.values(), default=0.0)

    @property
    def most_wrong(self) -> float:
        return max(self.wrong.values(), default=0.0)


def replay(records: list[dict[str, Any]], confidence: float, coverage: float) -> tuple[float, float]:
    """(share of answerable questions sure, share of sure answers wrong) at these thresholds."""
    answerable = [r for r in records if r["gold"]]
    sure = [
        r
        for r in records
        if r["kind"] == "extractive"
        and r["confidence"] != "none"
        and r["score"] >= confidence
        and r.get("coverage", 0.0) >= coverage
    ]
    wrong = sum(1 for r in sure if not (r["gold"] and r["f1"] >= 0.5))
    answered = sum(1 for r in sure if r["gold"])
    return (answered / len(answerable) if answerable else 0.0), (wrong / len(sure) if sure else 0.0)


def grid(sets: dict[str, list[dict[str, Any]]]) -> list[BandChoice]:
    """Every pair of thresholds, measured on every file."""
    choices = []
    for confidence in CONFIDENCES:
        for coverage in COVERAGES:
            measured = {name: replay(records, confidence, coverage) for name, records in sets.items()}
            choices.append(
                BandChoice(
                    confidence,
                    coverage,
                    {name: round(sure, 4) for name, (sure, _) in measured.items()},
                    {name: round(wrong, 4) for name, (_, wrong) in measured.items()},
                )
            )
    return choices


def choose(choices: list[BandChoice], max_wrong: float) -> BandChoice | None:
    """The pair with the most sure answers on the worst file, at most `max_wrong` wrong on every file
    (ties: the higher confidence, then the higher coverage); None when no pair keeps to it."""
    allowed = [c for c in choices if c.most_wrong <= max_wrong and c.least_sure > 0]
    return max(allowed, key=lambda c: (c.least_sure, c.confidence, c.coverage), default=None)


def frontier(choices: list[BandChoice]) -> list[BandChoice]:
    """For each limit on wrong sure answers (5%, 10%, ..., 30%), the pair `choose` picks: what a
    stricter or looser band costs."""
    rows = []
    for limit in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3):
        picked = choose(choices, limit)
        if picked is not None and picked not in rows:
            rows.append(picked)
    return rows


def write_bands(model: Path, choice: BandChoice) -> None:
    """Put the chosen thresholds in the reader's calibration.json, in place of any earlier band."""
    from training.calibrate import BAND_KEYS, CALIBRATION_FILE

    path = model / CALIBRATION_FILE
    calibration = json.loads(path.read_text()) if path.exists() else {}
    for key in BAND_KEYS:
        calibration.pop(key, None)
    calibration.update(sure_confidence=choice.confidence, sure_coverage=choice.coverage)
    path.write_text(json.dumps(calibration, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="`qabot eval --json-out` files, one per dev set")
    parser.add_argument("--max-wrong", type=float, default=0.1, help="most sure answers wrong on any file")
    parser.add_argument("--model", type=Path, help="write the chosen thresholds into this reader's calibration.json")
    parser.add_argument("--json", action="store_true", help="print the choice and the frontier as JSON")
    args = parser.parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    sets: dict[str, list[dict[str, Any]]] = {}
    for path in args.results:
        try:
            sets[path.stem] = json.loads(path.read_text())["questions"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            console.print(f"[red]{path}: not a `qabot eval --json-out` file ({error})[/red]")
            return 2
    choices = grid(sets)
    chosen, rows = choose(choices, args.max_wrong), frontier(choices)
    if args.json:
        print(json.dumps({"chosen": asdict(chosen) if chosen else None, "frontier": [asdict(r) for r in rows]}))
    else:
        table = Table("most wrong", "confidence", "coverage", *(f"{n}: sure / wrong" for n in sets))
        for row in rows:
            cells = (f"{row.sure[n]:.3f} / {row.wrong[n]:.3f}" for n in sets)
            table.add_row(f"{row.most_wrong:.3f}", f"{row.confidence:.2f}", f"{row.coverage:.1f}", *cells)
        Console().print(table)
    if chosen is None:
        console.print(f"[red]No thresholds keep sure answers wrong under {args.max_wrong} on every file.[/red]")
        return 1
    console.print(f"Chosen: confidence {chosen.confidence:.2f}, coverage {chosen.coverage:.1f}.")
    if args.model:
        write_bands(args.model, chosen)
        console.print(f"Wrote them into {args.model / 'calibration.json'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
