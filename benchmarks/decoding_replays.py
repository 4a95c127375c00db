"""Replays of span-decoding rules over `qabot eval --json-out` results, without asking again.

    .venv/bin/python benchmarks/decoding_replays.py RESULT.json [RESULT.json ...]

Each rule changes some answers after the reader has read; replaying it over saved results gives its
exact effect on EM and F1 (the answers it leaves alone keep their score):

* **hyphen**: a span cut inside a hyphenated word is completed ("week" to "week-long");
* **type**: a "how many/much …" or "when …" question (`qabot eval`'s question types) whose answer
  holds no number (or date word) takes the first alternative that does, when it scores at least a
  tenth of the answer.

Prints, per file and rule, how many answers it changes, how many for the better and the worse, and
EM / F1 over the answerable questions before and after.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.evaluation.metrics import exact_match, f1_score, question_type  # noqa: E402

_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety|hundreds?|thousands?|millions?|billions?|dozens?|half|percent)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\d|\b(january|february|march|april|may|june|july|august|september|october|november|december|monday|"
    r"tuesday|wednesday|thursday|friday|saturday|sunday|century|year|years|decade|spring|summer|autumn|winter|"
    r"today|yesterday)\b",
    re.IGNORECASE,
)


def hyphen(record: dict) -> str:
    """The answer completed to whole hyphenated words within its sentence."""
    answer, sentence = record["prediction"], record.get("evidence") or ""
    if not answer or answer not in sentence:
        return answer
    start = sentence.index(answer)
    end = start + len(answer)
    while start > 1 and sentence[start - 1] == "-" and sentence[start - 2].isalnum():
        start -= 2
        while start > 0 and sentence[start - 1].isalnum():
            start -= 1
    while end < len(sentence) - 1 and sentence[end] == "-" and sentence[end + 1].isalnum():
        end += 2
        while end < len(sentence) and sentence[end].isalnum():
            end += 1
    return sentence[start:end]


def answer_type(record: dict) -> str:
    """The first alternative of the asked type when the answer is not of it."""
    wanted = {"how many/much": _NUMBER, "when": _DATE}.get(question_type(record["question"]))
    answer = record["prediction"]
    if wanted is None or not answer or wanted.search(answer):
        return answer
    for alternative in record.get("alternatives", []):
        if wanted.search(alternative["text"]) and alternative["score"] >= 0.1 * record["score"]:
            return alternative["text"]
    return answer


RULES = {"hyphen": hyphen, "type": answer_type}


def replay(records: list[dict], rule) -> dict:
    answerable = [r for r in records if r["gold"]]
    before = [(exact_match(r["prediction"], r["gold"]), f1_score(r["prediction"], r["gold"])) for r in answerable]
    changed = better = worse = 0
    after = []
    for record, (em, f1) in zip(answerable, before, strict=True):
        answer = rule(record)
        scores = (
            (exact_match(answer, record["gold"]), f1_score(answer, record["gold"]))
            if answer != record["prediction"]
            else (em, f1)
        )
        changed += answer != record["prediction"]
        better += scores[1] > f1
        worse += scores[1] < f1
        after.append(scores)
    n = len(answerable) or 1
    return {
        "changed": changed,
        "better": better,
        "worse": worse,
        "em": [round(sum(s[0] for s in before) / n, 4), round(sum(s[0] for s in after) / n, 4)],
        "f1": [round(sum(s[1] for s in before) / n, 4), round(sum(s[1] for s in after) / n, 4)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="`qabot eval --json-out` files")
    args = parser.parse_args()
    for path in args.results:
        records = json.loads(path.read_text(encoding="utf-8"))["questions"]
        for name, rule in RULES.items():
            print(json.dumps({"file": path.name, "rule": name, **replay(records, rule)}))


if __name__ == "__main__":
    main()
