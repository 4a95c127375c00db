"""Evaluation over question sets: load SQuAD, JSONL or CSV questions, ask the engine as the bots do, score.

The questions go through the very same `QAEngine.ask` as the chat and Telegram front ends (follow-ups
with their conversation's history), so the numbers here are the users' numbers.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
import string
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy
from haystack import Document
from haystack.components.evaluators import (
    AnswerExactMatchEvaluator,
    DocumentMRREvaluator,
    DocumentRecallEvaluator,
)
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from retrieval.answer import Answer, Turn
from retrieval.documents import document_for
from retrieval.errors import QabotError

if TYPE_CHECKING:
    from retrieval.settings import Settings

Location = int | tuple[int, int]  # a line, or a line and column (SQuAD files are often one line)
QUESTION_TYPES = ("who", "what", "when", "where", "how many/much", "why", "other")


class QuestionSetError(QabotError):
    """A question set that cannot be read; the message names the file and line."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message, exit_code)


# ---------------------------------------------------------------------------------------------------------
# Question sets


@dataclass(frozen=True)
class EvalQuestion:
    """One question to ask, with the answers that count as right (none: not answerable from the corpus)."""

    id: str
    question: str
    answers: tuple[str, ...]
    gold_source: str | None = None
    title: str = ""
    follow_up_of: str | None = None
    line: int = 0

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True)
class QuestionSet:
    """A file's questions in order, and the paragraphs they came with (the corpus when none is given)."""

    path: Path
    questions: tuple[EvalQuestion, ...]
    documents: tuple[Document, ...] = ()


class _QuestionSetBuilder:
    """Collects questions from any format and checks what all formats share: ids, follow-ups, contexts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.questions: list[EvalQuestion] = []
        self.documents: dict[tuple[str, str], Document] = {}
        self.paragraphs_per_title: Counter[str] = Counter()
        self.ids: set[str] = set()

    def error(self, where: Location, reason: str) -> QuestionSetError:
        place = ":".join(map(str, where)) if isinstance(where, tuple) else str(where)
        return QuestionSetError(f"{self.path}:{place}: {reason}")

    def source_of(self, context: str, title: str) -> str:
        """The stable source id (`title#n`) of a paragraph, kept once however many questions share it."""
        key = (title, context)
        if key not in self.documents:
            source = f"{title}#{self.paragraphs_per_title[title]}"
            self.paragraphs_per_title[title] += 1
            self.documents[key] = document_for(context, title=title, source=source)
        return self.documents[key].meta["source"]

    def add_record(self, record: Any, line: int) -> None:
        """One JSONL or CSV record: `question`, `answers`, maybe `id`, `title`, `context`, `follow_up_of`."""
        if not isinstance(record, dict):
            kind = type(record).__name__
            raise self.error(line, f"expected an object with 'question' and 'answers', got {kind}")
        if "answers" not in record:
            raise self.error(line, "missing 'answers' (a list of strings; [] when the corpus has no answer)")
        title = _optional_text(record, "title", self.error, line) or self.path.stem
        context = _optional_text(record, "context", self.error, line)
        self.add(
            line,
            question=record.get("question"),
            answers=_answer_texts(record["answers"], self.error, line),
            question_id=_optional_text(record, "id", self.error, line),
            follow_up_of=_optional_text(record, "follow_up_of", self.error, line),
            title=title,
            gold_source=self.source_of(context, title) if context else None,
        )

    def add(
        self,
        where: Location,
        question: Any,
        answers: tuple[str, ...],
        question_id: str | None = None,
        follow_up_of: str | None = None,
        title: str = "",
        gold_source: str | None = None,
    ) -> None:
        if not isinstance(question, str) or not question.strip():
            raise self.error(where, "missing or empty 'question'")
        line = where[0] if isinstance(where, tuple) else where
        question_id = question_id or f"line-{line}"
        if question_id in self.ids:
            raise self.error(where, f"duplicate question id {question_id!r}")
        if follow_up_of is not None and follow_up_of not in self.ids:
            raise self.error(where, f"'follow_up_of' is {follow_up_of!r}, not the id of an earlier question")
        self.ids.add(question_id)
        self.questions.append(
            EvalQuestion(
                id=question_id,
                question=question.strip(),
                answers=answers,
                gold_source=gold_source,
                title=title,
                follow_up_of=follow_up_of,
                line=line,
            )
        )

    def build(self) -> QuestionSet:
        if not self.questions:
            raise QuestionSetError(f"{self.path}: no questions found")
        return QuestionSet(self.path, tuple(self.questions), tuple(self.documents.values()))


_ErrorFactory = Callable[[Location, str], QuestionSetError]


def _optional_text(record: dict[str, Any], key: str, error: _ErrorFactory, where: Location) -> str | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise error(where, f"'{key}' must be a string, got {type(value).__name__}")
    return str(value)


def _answer_texts(answers: Any, error: _ErrorFactory, where: Location) -> tuple[str, ...]:
    """Gold answers as strings; SQuAD-style `{"text": ...}` objects are accepted too."""
    if not isinstance(answers, list):
        raise error(where, f"'answers' must be a list, got {type(answers).__name__}")
    texts = []
    for answer in answers:
        text = answer.get("text") if isinstance(answer, dict) else answer
        if not isinstance(text, str) or not text.strip():
            raise error(where, f"each answer must be a non-empty string, got {answer!r}")
        texts.append(text.strip())
    return tuple(texts)


def load_question_set(path: Path) -> QuestionSet:
    """Read a SQuAD v1.1/v2.0 `.json`, a `.jsonl` or a `.csv` question set.

    Raises QuestionSetError, naming the file and line, for anything it cannot use.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionSetError(f"cannot read question set {path}: {exc}") from exc
    readers = {".json": _read_squad, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".csv": _read_csv}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise QuestionSetError(f"{path}: unknown question-set format; use .json (SQuAD), .jsonl or .csv")
    builder = _QuestionSetBuilder(path)
    reader(text, builder)
    return builder.build()


def _read_jsonl(text: str, builder: _QuestionSetBuilder) -> None:
    # Split at "\n" only: JSON strings may hold U+2028 and friends, which splitlines() breaks at.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise builder.error((number, exc.colno), f"not valid JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise builder.error(number, "JSON nested too deeply") from exc
        builder.add_record(record, number)


def _read_csv(text: str, builder: _QuestionSetBuilder) -> None:
    rows = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = rows.fieldnames or []
        missing = ", ".join(column for column in ("question", "answer") if column not in header)
        if missing:
            raise builder.error(1, f"the header must name the columns question,answer (missing: {missing})")
        for row in rows:
            if None in row or any(value is None for value in row.values()):
                raise builder.error(rows.line_num, f"expected {len(header)} columns, as in the header")
            record: dict[str, Any] = dict(row)
            answer = record.pop("answer").strip()
            record["answers"] = [answer] if answer else []
            builder.add_record(record, rows.line_num)
    except csv.Error as exc:
        raise builder.error(rows.line_num, f"not valid CSV: {exc}") from exc


class _LocatedDict(dict):  # type: ignore[type-arg]
    """A JSON object that remembers the line and column it starts at, so that errors can point at it."""

    where: tuple[int, int] = (1, 1)


def _parse_located_json(text: str) -> Any:
    """`json.loads`, except that every object is a `_LocatedDict` that knows where it starts."""
    newlines = [match.start() for match in re.finditer("\n", text)]

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[_LocatedDict, int]:
        pairs, end = json.decoder.JSONObject(s_and_end, *args)  # type: ignore[attr-defined]
        located = _LocatedDict(pairs)
        start = s_and_end[1] - 1  # the opening brace
        line = bisect.bisect_left(newlines, start)
        located.where = (line + 1, start - (newlines[line - 1] if line else -1))
        return located, end

    decoder = json.JSONDecoder()
    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder.decode(text)


def _read_squad(text: str, builder: _QuestionSetBuilder) -> None:
    try:
        squad = _parse_located_json(text)
    except json.JSONDecodeError as exc:
        raise builder.error((exc.lineno, exc.colno), f"not valid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise builder.error(1, "JSON nested too deeply") from exc

    def items(parent: Any, key: str, what: str) -> list[Any]:
        where = getattr(parent, "where", 1)
        value = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(value, list):
            raise builder.error(where, f"expected a SQuAD {what} with a '{key}' list")
        if not all(isinstance(item, dict) for item in value):
            raise builder.error(where, f"each item of '{key}' must be an object")
        return value

    for number, article in enumerate(items(squad, "data", "file"), start=1):
        title = article.get("title") if isinstance(article.get("title"), str) else f"article {number}"
        for paragraph in items(article, "paragraphs", "article"):
            context = paragraph.get("context")
            if not isinstance(context, str) or not context.strip():
                raise builder.error(paragraph.where, "missing or empty 'context'")
            source = builder.source_of(context, title)
            for qa in items(paragraph, "qas", "paragraph"):
                # SQuAD 2.0 marks unanswerable questions; their `plausible_answers` are not answers.
                impossible = qa.get("is_impossible") is True
                answers = () if impossible else _answer_texts(qa.get("answers"), builder.error, qa.where)
                builder.add(
                    qa.where,
                    question=qa.get("question"),
                    answers=answers,
                    question_id=_optional_text(qa, "id", builder.error, qa.where),
                    title=title,
                    gold_source=source,
                )


# ---------------------------------------------------------------------------------------------------------
# Metrics

_EXACT_MATCH = AnswerExactMatchEvaluator()
_RECALL = DocumentRecallEvaluator(mode="single_hit", document_comparison_field="meta.source")
_MRR = DocumentMRREvaluator(document_comparison_field="meta.source")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official SQuAD normalisation: lower case, no ASCII punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer; with no gold, when it is empty."""
    golds = list(golds) or [""]
    result = _EXACT_MATCH.run(
        ground_truth_answers=[normalize_answer(gold) for gold in golds],
        predicted_answers=[normalize_answer(prediction)] * len(golds),
    )
    return float(max(result["individual_scores"]))


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1, the best over the gold answers; with no gold, 1.0 only for an empty prediction."""
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for gold in list(golds) or [""]:
        expected = normalize_answer(gold).split()
        if not predicted or not expected:
            best = max(best, float(predicted == expected))
            continue
        common = sum((Counter(predicted) & Counter(expected)).values())
        if common:
            precision, recall = common / len(predicted), common / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def _loose_words(text: str) -> str:
    """SQuAD normalisation without Unicode punctuation (“curly quotes”), padded for whole-word search."""
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in normalize_answer(text))
    return f" {' '.join(text.split())} "


def evidence_hit(answer_text: str, evidence: str, golds: Sequence[str]) -> bool:
    """True when a gold answer appears, as whole words, in the answer or in its evidence sentence."""
    found = _loose_words(answer_text) + _loose_words(evidence)
    return any(_loose_words(gold).strip() and _loose_words(gold) in found for gold in golds)


def retrieval_scores(gold_sources: Sequence[str], retrieved_sources: Sequence[Sequence[str]]) -> dict[str, list[float]]:
    """Per question: recall at 1 and 5, and the reciprocal rank of the gold paragraph among the passages."""
    if not gold_sources:
        return {"recall_at_1": [], "recall_at_5": [], "mrr": []}

    def documents(sources: Iterable[str]) -> list[Document]:
        return [Document(content=source, meta={"source": source}) for source in sources]

    gold = [documents([source]) for source in gold_sources]
    ranked = [documents(sources) for sources in retrieved_sources]

    def scores(evaluator: Any, cut: int | None) -> list[float]:
        return evaluator.run(ground_truth_documents=gold, retrieved_documents=[r[:cut] for r in ranked])[
            "individual_scores"
        ]

    return {"recall_at_1": scores(_RECALL, 1), "recall_at_5": scores(_RECALL, 5), "mrr": scores(_MRR, None)}


_TYPE_WORDS = re.compile(
    r"\b(?:(?P<how_many>how (?:many|much))|(?P<other>how)"
    r"|(?P<when>when|(?:what|which) (?:year|date|day|month|time|century|decade))"
    r"|(?P<who>who|whom|whose)|(?P<where>where)|(?P<why>why)|(?P<what>what|which))\b",
    re.IGNORECASE,
)


def question_type(question: str) -> str:
    """The question's type from its first question word; "what year"-like questions count as "when"."""
    match = _TYPE_WORDS.search(question)
    if match is None:
        return "other"
    kind = match.lastgroup or "other"
    return "how many/much" if kind == "how_many" else kind


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (numpy's linear interpolation), None for no values."""
    return float(numpy.percentile(values, q)) if len(values) else None


def _mean(values: Iterable[float | bool | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


# ---------------------------------------------------------------------------------------------------------
# Running and scoring


class Asker(Protocol):
    """What evaluation needs from the engine: the bots' own `ask`."""

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer: ...


@dataclass(frozen=True)
class QuestionResult:
    """One question, the engine's answer to it, and how long the answer took."""

    question: EvalQuestion
    answer: Answer
    latency_ms: float

    @property
    def prediction(self) -> str:
        """What the user was told; an abstention predicts the empty answer, as in SQuAD 2.0."""
        return self.answer.text if self.answer.known else ""


def run_questions(engine: Asker, question_set: QuestionSet, console: Console | None = None) -> list[QuestionResult]:
    """Ask every question in order, replaying each follow-up after the conversation it continues."""
    conversations: dict[str, tuple[Turn, ...]] = {}
    results = []
    columns = (TextColumn("Asking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("ask", total=len(question_set.questions))
        for question in question_set.questions:
            history = conversations[question.follow_up_of] if question.follow_up_of else ()
            start = time.perf_counter()
            answer = engine.ask(question.question, history)
            latency_ms = (time.perf_counter() - start) * 1000
            conversations[question.id] = (*history, Turn(question.question, answer))
            results.append(QuestionResult(question, answer, latency_ms))
            progress.advance(task)
    return results


def score_question(result: QuestionResult) -> dict[str, Any]:
    """The JSON record of one question: prediction, gold, answer scores (retrieval scores are added later)."""
    question, answer = result.question, result.answer
    return {
        "id": question.id,
        "question": question.question,
        "type": question_type(question.question),
        "follow_up_of": question.follow_up_of,
        "gold": list(question.answers),
        "gold_source": question.gold_source,
        "prediction": result.prediction,
        "kind": answer.kind,
        "score": answer.score,
        "evidence": answer.evidence,
        "abstained": not answer.known,
        "exact_match": exact_match(result.prediction, question.answers),
        "f1": f1_score(result.prediction, question.answers),
        "evidence_hit": (
            answer.known and evidence_hit(answer.text, answer.evidence, question.answers)
            if question.answerable
            else None
        ),
        "no_answer_correct": None if question.answerable else not answer.known,
        "gold_in_passages": (
            any(evidence_hit("", passage.text, question.answers) for passage in answer.passages)
            if question.answerable
            else None
        ),
        "recall_at_1": None,
        "recall_at_5": None,
        "reciprocal_rank": None,
        "retrieved_titles": [passage.title for passage in answer.passages],
        "retrieved_sources": [passage.source for passage in answer.passages],
        "latency_ms": round(result.latency_ms, 2),
    }


def failure_reason(record: dict[str, Any]) -> str | None:
    """Why a scored question counts as a failure, in the pipeline's terms; None when it did not fail."""
    if record["no_answer_correct"] is False:
        return "answered a question that has no answer"
    if record["evidence_hit"] is not False:
        return None
    if record["abstained"]:
        return "abstained"
    if record["recall_at_5"] == 0:
        return "gold paragraph not retrieved"
    if not record["gold_in_passages"]:
        return "answer not in the retrieved passages"
    return "wrong sentence chosen"


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
    return {
        "questions_file": str(questions_file),
        **_aggregate(records),
        "answer_kinds": dict(Counter(r["kind"] for r in records)),
        "by_type": by_type,
        "questions": records,
    }


# ---------------------------------------------------------------------------------------------------------
# Console output and the `qabot eval` command

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


def format_metric(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_table(summary: dict[str, Any]) -> Table:
    """The metrics for each question type and for all questions; "–" where a metric does not apply."""
    table = Table(
        title=f"Evaluation of {summary['n_questions']} question{'' if summary['n_questions'] == 1 else 's'}",
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


def eval_command(
    settings: Settings,
    questions: Path,
    corpus: list[Path],
    json_out: Path | None,
    report: Path | None,
    console: Console,
) -> dict[str, Any]:
    """`qabot eval`: load the questions, index the corpus, ask every question, print and write the results.

    The corpus, indexed into `settings.index_dir`, is `corpus` when given, else the question set's own
    paragraphs (SQuAD, or JSONL contexts); otherwise the index is used as it is (filled from the
    configured `index.corpus` when empty, as `qabot chat` does). Raises QuestionSetError (exit code 2)
    for an unreadable question set.
    """
    from retrieval.engine import QAEngine

    question_set = load_question_set(questions)
    engine = QAEngine(settings)
    where = f"into {settings.index_dir}"
    if corpus:
        with console.status(f"Indexing {', '.join(map(str, corpus))} {where}"):
            engine.index_paths(list(corpus))
    elif question_set.documents:
        with console.status(f"Indexing the {len(question_set.documents)} paragraphs of {questions} {where}"):
            engine.index_documents(list(question_set.documents))
    elif engine.is_empty():
        with console.status(f"The index is empty: indexing {', '.join(map(str, settings.index.corpus))} {where}"):
            engine.index_paths(list(settings.index.corpus))
    engine.warm_up()  # load the models now, so that the first question's latency is a question's
    results = run_questions(engine, question_set, console)
    summary = summarize(results, questions)
    console.print(summary_table(summary))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        console.print(f"Wrote {json_out}", markup=False)
    if report is not None:
        from bot.eval_report import write_report

        console.print(f"Wrote {write_report(summary, report)}", markup=False)
    return summary
