"""`qabot eval`: load a question set, index its corpus, ask every question, print and write the results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from bot.evaluation.followups import follow_ups_line
from bot.evaluation.questionsets import load_question_set
from bot.evaluation.report import bands_line, summarize, summary_table, write_report
from bot.evaluation.runner import run_questions
from bot.words import plural

if TYPE_CHECKING:
    from retrieval.settings import Settings


def eval_command(
    settings: Settings,
    questions: Path,
    corpus: list[Path],
    json_out: Path | None,
    report: Path | None,
    console: Console,
) -> dict[str, Any]:
    """`qabot eval`: load the questions, index the corpus, ask every question, print and write the results.

    The corpus, indexed into the configured store, is `corpus` when given, else the question set's own
    paragraphs (SQuAD, or JSONL contexts); otherwise the index is used as it is (filled from the
    configured `index.corpus` when empty, as `qabot chat` does). Raises QuestionSetError (exit code 2)
    for an unreadable question set.
    """
    from retrieval.engine import QAEngine

    question_set = load_question_set(questions)
    engine = QAEngine(settings)
    where = f"into {engine.store.location}"
    if corpus:
        with console.status(f"Indexing {', '.join(map(str, corpus))} {where}"):
            engine.index_paths(list(corpus))
    elif question_set.documents:
        with console.status(f"Indexing the {plural(len(question_set.documents), 'paragraph')} of {questions} {where}"):
            engine.index_documents(list(question_set.documents))
    elif engine.is_empty():
        with console.status(f"The index is empty: indexing index.corpus {where}"):
            engine.index_corpus()
    engine.warm_up()  # load the models now, so that the first question's latency is a question's
    results = run_questions(engine, question_set, console)
    summary = summarize(results, questions)
    console.print(summary_table(summary))
    console.print(bands_line(summary), markup=False, soft_wrap=True)
    if summary["follow_ups"]:
        console.print(follow_ups_line(summary["follow_ups"]), markup=False, soft_wrap=True)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        console.print(f"Wrote {json_out}", markup=False)
    if report is not None:
        console.print(f"Wrote {write_report(summary, report)}", markup=False)
    return summary
