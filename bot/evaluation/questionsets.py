"""Question sets: SQuAD v1.1/v2.0 `.json`, `.jsonl` and `.csv` files, read into `QuestionSet`s.

Anything that cannot be used is a `QuestionSetError` naming the file, the line and, where it
helps, the column.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haystack import Document

from bot.words import plural
from retrieval.errors import QabotError
from retrieval.files import FileRefusedError, NotTextError, read_text_file
from retrieval.ingest.articles import document_for

Location = int | tuple[int, int]  # a line, or a line and column (SQuAD files are often one line)
MAX_BYTES = 128 * 1024 * 1024
# A JSONL or CSV line (one record) may be this long; SQuAD .json files are often one line, and are not held to it.
MAX_LINE_CHARS = 1_000_000


class QuestionSetError(QabotError):
    """A question set that cannot be read; the message names the file and line."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message, exit_code)


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
        text = read_text_file(path, MAX_BYTES, "utf-8-sig")
    except NotTextError as exc:
        raise QuestionSetError(f"{path}:{exc.line}: {exc.reason}") from exc
    except FileRefusedError as exc:
        raise QuestionSetError(f"cannot read question set {path}: {exc.reason}") from exc
    readers = {".json": _read_squad, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".csv": _read_csv}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise QuestionSetError(f"{path}: unknown question-set format; use .json (SQuAD), .jsonl or .csv")
    builder = _QuestionSetBuilder(path)
    if reader is not _read_squad and (long := _first_long_line(text, MAX_LINE_CHARS)):
        raise builder.error(long, f"line longer than {MAX_LINE_CHARS:,} characters")
    reader(text, builder)
    return builder.build()


def _first_long_line(text: str, limit: int) -> int:
    """The number of the first line of `text` longer than `limit` characters (0: none is)."""
    start = 0
    for number in range(1, len(text) + 2):
        end = text.find("\n", start)
        if (len(text) if end < 0 else end) - start > limit:
            return number
        if end < 0:
            return 0
        start = end + 1
    return 0


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
                raise builder.error(rows.line_num, f"expected {plural(len(header), 'column')}, as in the header")
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
