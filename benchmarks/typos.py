"""Benchmark: F1 on XQuAD-en dev with one seeded typo per question, with and without spelling correction.

    .venv/bin/python benchmarks/typos.py [--questions ../shared/eval/xquad-en-dev.json] [--sample 200] [--seed 13]

Four runs through the engine's own `ask`, as `qabot eval` asks: clean questions and questions with a
typo, each with correction on and off (off: the speller is taken out of the pipeline). A typo is one
edit (a letter dropped, doubled, swapped with the next or replaced by its neighbour on the keyboard)
in one word of four letters or more, chosen with the seed. On 2 cores the whole dev set (1,190
questions, four times) takes too long: by default a seeded sample of 200 questions is asked
(`--sample 0` asks them all). The results file holds aggregate numbers only, no text from the set.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.evaluation.metrics import f1_score  # noqa: E402
from bot.evaluation.questionsets import load_question_set  # noqa: E402
from retrieval.engine import QAEngine  # noqa: E402
from retrieval.settings import load_settings  # noqa: E402

DEFAULT_QUESTIONS = ROOT.parent / "shared" / "eval" / "xquad-en-dev.json"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "typos.json"
_NEIGHBOURS = dict(zip("qwertyuiopasdfghjklzxcvbnm", "wqrtyuiopsadfghjklkxzcvbnm", strict=True))


def with_typo(question: str, rng: random.Random) -> str:
    """`question` with one edit in one of its words of four letters or more (unchanged when it has none)."""
    words = [m for m in re.finditer(r"[A-Za-z]{4,}", question)]
    if not words:
        return question
    word = rng.choice(words)
    text, i = word.group(0), rng.randrange(1, len(word.group(0)) - 1)
    kind = rng.choice(("drop", "double", "swap", "neighbour"))
    if kind == "drop":
        typo = text[:i] + text[i + 1 :]
    elif kind == "double":
        typo = text[:i] + text[i] + text[i:]
    elif kind == "swap":
        typo = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    else:
        typo = text[:i] + _NEIGHBOURS.get(text[i].lower(), text[i]) + text[i + 1 :]
    return question[: word.start()] + typo + question[word.end() :]


def mean_f1(engine: QAEngine, questions: list, texts: list[str]) -> float:
    scores = []
    for question, text in zip(questions, texts, strict=True):
        answer = engine.ask(text)
        scores.append(f1_score(answer.text if answer.known else "", question.answers))
    return sum(scores) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--sample", type=int, default=200, help="questions to ask (0: all)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    question_set = load_question_set(args.questions)
    rng = random.Random(args.seed)
    questions = [q for q in question_set.questions if q.answerable]
    if args.sample and args.sample < len(questions):
        questions = rng.sample(questions, args.sample)
    typos = [with_typo(q.question, rng) for q in questions]
    with tempfile.TemporaryDirectory(prefix="qabot-typos-") as folder:
        settings = load_settings(index={"dir": Path(folder) / "index"}, data={"dir": Path(folder) / "data"})
        engine = QAEngine(settings)
        engine.index_documents(list(question_set.documents))
        followup = engine.pipeline.get_component("followup")
        speller = followup.speller
        results = {}
        for correction in (True, False):
            followup.speller = speller if correction else None
            on = "with" if correction else "without"
            results[f"clean_{on}_correction"] = mean_f1(engine, questions, [q.question for q in questions])
            results[f"typos_{on}_correction"] = mean_f1(engine, questions, typos)
    summary = {
        "questions_file": args.questions.name,
        "questions": len(questions),
        "sample_seed": args.seed,
        "f1": {key: round(100 * value, 2) for key, value in results.items()},
        "typo_loss_with_correction": round(
            100 * (results["clean_with_correction"] - results["typos_with_correction"]), 2
        ),
        "typo_loss_without_correction": round(
            100 * (results["clean_without_correction"] - results["typos_without_correction"]), 2
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
