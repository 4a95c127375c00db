"""Hostile input, property-based: any text, bytes or file a user or a document can bring.

Questions of any Unicode (control characters and lone surrogates included) get an answer or a
one-line refusal, in the engine and in the CLI chat; any answer renders as valid Telegram HTML
with nothing injected and nothing lost; malformed question sets are errors that name a place in
the file; any bytes in an article file give a Document or a reason to skip it; any bytes or any
JSON in an index's pointer and manifest files give the index or a one-line error naming it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from bot.chat import run_chat
from bot.evaluation.questionsets import QuestionSet, QuestionSetError, load_question_set
from bot.formatting import render_answer, render_sources
from bot.telegram.format import (
    answer_blocks,
    format_answer,
    format_sources,
    format_welcome,
    telegram_length,
)
from bot.words import unreadable_question
from retrieval.answering.answer import Answer, Passage, Turn
from retrieval.answering.pipeline import clean_question
from retrieval.engine import QAEngine
from retrieval.errors import QabotError
from retrieval.ingest.articles import ArticleLoader, SkippedFile
from retrieval.ingest.splitter import SentencePassageSplitter
from retrieval.stores.embedded.index_folder import IndexData, _manifest_digest, current_generation, load_index
from tests.conftest import make_settings
from tests.telegram_standin import MESSAGE_LIMIT, WatchedEngine, parse_telegram_html

FEW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any code point: control and format characters, separators and lone surrogates are drawn often.
ANY_CHARACTER = st.characters(exclude_categories=())
AWKWARD_CHARACTER = st.one_of(
    st.characters(categories=["Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Co", "Cn"]),
    st.sampled_from("<>&\"'/\\[]#*_`\r\n\t\x00\x1b\u2028\u200b\ufeff"),
)
ANY_TEXT = st.text(st.one_of(ANY_CHARACTER, AWKWARD_CHARACTER), max_size=200)
# What Telegram and a UTF-8 terminal can deliver: no lone surrogates.
DELIVERABLE_TEXT = st.text(
    st.one_of(st.characters(codec="utf-8"), st.sampled_from("<>&\"'[]\r\t\x00\x1b\u2028\u200b")), max_size=200
)


# --- Questions: the engine and the CLI chat. ---------------------------------------------------------


def ask_or_refusal(engine: Any, question: str, history: tuple[Turn, ...] = ()) -> Answer | None:
    """The engine's answer, or None when it refused the question with a one-line QabotError."""
    try:
        answer = engine.ask(question, history)
    except QabotError as refusal:
        assert str(refusal) and "\n" not in str(refusal)
        return None
    assert isinstance(answer, Answer) and answer.kind in {"extractive", "sentence", "none", "reply"}
    assert 0.0 <= answer.score <= 1.0 + 1e-6
    return answer


@MANY
@given(first=ANY_TEXT, follow_up=ANY_TEXT)
def test_any_question_gets_an_answer_or_a_one_line_refusal(seed_engine, first, follow_up):
    answer = ask_or_refusal(seed_engine, first)
    if answer is None:  # only a question with nothing in it (once control characters go) is refused
        assert not clean_question(first)
        return
    ask_or_refusal(seed_engine, follow_up, (Turn(first, answer),))


CHAT_LINE = st.text(st.one_of(ANY_CHARACTER, AWKWARD_CHARACTER), max_size=80).filter(lambda line: "\n" not in line)
CHAT_COMMAND = st.sampled_from(["/sources", "/new", "/help", "/SOURCES", "/nope", "/", "/sources extra"])


@FEW
@given(lines=st.lists(st.one_of(CHAT_LINE, CHAT_COMMAND), max_size=6))
def test_chat_loop_answers_every_question_line_whatever_it_holds(seed_engine, lines):
    engine = WatchedEngine(seed_engine)
    screen = io.StringIO()
    exit_code = run_chat(engine, Console(file=screen, width=100), stdin=io.StringIO("\n".join(lines) + "\n"))
    assert exit_code == 0
    questions = []
    for line in (line.strip() for line in lines):
        if line.lower() in {"/quit", "/exit", "/q"}:
            break
        if line and not line.startswith("/") and unreadable_question(line) is None:
            questions.append(line)  # a line of no letter or digit gets a hint, without asking
    assert engine.questions() == questions


# --- Answers rendered: Telegram HTML and the terminal. ----------------------------------------------


def urls(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["http://", "https://"]), text)


SOURCES = st.one_of(DELIVERABLE_TEXT, urls(DELIVERABLE_TEXT), st.just('https://e.x/?a="1"&b=<2>'))
PASSAGES = st.builds(
    Passage,
    id=st.text(string.hexdigits, max_size=8),
    text=st.one_of(DELIVERABLE_TEXT, st.text(st.sampled_from("ab <&>\n"), min_size=590, max_size=700)),
    title=DELIVERABLE_TEXT,
    source=SOURCES,
    score=st.floats(-1e6, 1e6, allow_nan=False),
)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    evidence = draw(DELIVERABLE_TEXT)
    start = draw(st.integers(-1, len(evidence) + 1))
    return Answer(
        question=draw(DELIVERABLE_TEXT),
        text=draw(DELIVERABLE_TEXT),
        score=draw(st.floats(0, 1)),
        kind=draw(st.sampled_from(["extractive", "sentence", "none"])),
        evidence=evidence,
        title=draw(DELIVERABLE_TEXT),
        source=draw(SOURCES),
        passages=tuple(draw(st.lists(PASSAGES, max_size=4))),
        answer_start=start,
        answer_end=draw(st.integers(start - 1, len(evidence) + 1)),
        notices=tuple(draw(st.lists(DELIVERABLE_TEXT, max_size=2))),
    )


def read_telegram(chunks: list[str]) -> tuple[str, list[tuple[str, dict[str, str | None]]]]:
    """What the user reads in the messages (each checked to be HTML Telegram accepts) and their tags."""
    assert chunks and all(isinstance(chunk, str) for chunk in chunks)
    texts, tags = [], []
    for chunk in chunks:
        text, chunk_tags = parse_telegram_html(chunk)  # raises on bad, unbalanced or unknown markup
        assert 0 < telegram_length(text) <= MESSAGE_LIMIT
        texts.append(text)
        tags.extend(chunk_tags)
    return "\n".join(texts), tags


def without_newlines(text: str) -> str:
    """Messages are split between lines, so the newline at a split is the one thing not kept."""
    return text.replace("\n", "")


@MANY
@given(answer=answers())
def test_any_answer_is_valid_telegram_html_with_nothing_injected_or_lost(answer):
    text, tags = read_telegram(format_answer(answer))
    blocks = answer_blocks(answer)
    expected = "\n".join("".join(span.text for span in block.spans) for block in blocks)
    assert without_newlines(text) == without_newlines(expected)  # every piece of text, escaped, none read as markup
    assert {tag for tag, _ in tags} <= {"b", "i", "a", "blockquote"}
    assert all(attributes == {"href": answer.source} for tag, attributes in tags if tag == "a")
    if len(format_answer(answer)) == 1:  # split messages repeat a tag around each part
        spans = [span for block in blocks for span in block.spans]
        expected_tags = sum(bool(span.tag or span.href) for span in spans) + sum(bool(b.wrapper) for b in blocks)
        assert len(tags) == expected_tags


@MANY
@given(answer=answers())
def test_any_sources_message_is_valid_telegram_html_naming_the_articles(answer):
    text, tags = read_telegram(format_sources(answer))
    assert len(format_sources(answer)) == 1  # one short message
    flat = without_newlines(text)
    if answer.known:
        assert without_newlines(answer.title.strip() or "") in flat
    elif answer.kind == "none":
        assert flat.startswith("I looked at" if answer.passages else "I found no article")
    assert {tag for tag, _ in tags} <= {"i", "a"}
    addresses = {passage.source for passage in answer.passages} | {passage.url for passage in answer.passages}
    addresses |= {answer.source, answer.url}
    assert all(attributes["href"] in addresses for tag, attributes in tags if tag == "a")


@FEW
@given(examples=st.lists(DELIVERABLE_TEXT, max_size=3))
def test_any_example_questions_make_a_valid_welcome(examples):
    text, tags = read_telegram([format_welcome(examples)])
    assert all(without_newlines(example) in without_newlines(text) for example in examples)
    assert {tag for tag, _ in tags} <= {"i"}


@FEW
@given(answer=answers())
def test_any_answer_renders_in_the_terminal(answer):
    screen = io.StringIO()
    console = Console(file=screen, width=200, color_system=None)
    console.print(render_answer(answer))  # rich markup in an answer or a title is shown, not applied
    console.print(render_sources(answer))
    title = answer.title.strip()
    if answer.known and title and set(title) <= set(string.printable) - set(string.whitespace[1:]):
        assert title in screen.getvalue()


# --- Question sets: any malformed file is an error naming a place in it. -----------------------------

_LOCATION = re.compile(r":\d+(:\d+)?: ")


def load_or_located_error(path: Path, data: bytes) -> QuestionSet | None:
    path.write_bytes(data)
    try:
        return load_question_set(path)
    except QuestionSetError as error:
        message = str(error)
        assert "\n" not in message
        located = message.startswith(str(path)) and _LOCATION.match(message, len(str(path)))
        file_level = message in {f"{path}: no questions found"} or (
            message.startswith(f"cannot read question set {path}: ") and "position" in message
        )
        assert located or file_level, message
        return None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | DELIVERABLE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(DELIVERABLE_TEXT, inner, max_size=3),
    max_leaves=8,
)
FIELD_VALUES = JSON_VALUES | st.lists(JSON_VALUES, max_size=3)
RECORD_KEYS = st.sampled_from(["id", "question", "answers", "title", "context", "follow_up_of", "is_impossible"])
RECORDS = st.dictionaries(RECORD_KEYS, FIELD_VALUES, max_size=6) | JSON_VALUES


@st.composite
def squad_files(draw: st.DrawFn) -> Any:
    """Something shaped like SQuAD, with any value at any level."""

    def level(children: Any) -> Any:
        return st.one_of(
            st.lists(st.dictionaries(RECORD_KEYS, FIELD_VALUES, max_size=4) | children, max_size=3), JSON_VALUES
        )

    qas = level(st.builds(dict, question=FIELD_VALUES, answers=FIELD_VALUES, id=FIELD_VALUES))
    paragraphs = level(st.builds(dict, context=FIELD_VALUES, qas=qas))
    articles = level(st.builds(dict, title=FIELD_VALUES, paragraphs=paragraphs))
    return draw(st.one_of(st.builds(dict, data=articles), JSON_VALUES))


def encoded(texts: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return texts.map(lambda text: text.encode("utf-8", "surrogatepass"))


ANY_BYTES = st.binary(max_size=300) | encoded(st.text(st.one_of(ANY_CHARACTER, AWKWARD_CHARACTER), max_size=300))


@MANY
@given(suffix=st.sampled_from([".jsonl", ".csv", ".json"]), data=ANY_BYTES)
def test_any_bytes_as_a_question_set_load_or_fail_with_a_location(tmp_path_factory, suffix, data):
    load_or_located_error(tmp_path_factory.mktemp("qs") / f"questions{suffix}", data)


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_deeply_nested_json_is_an_error_with_a_location(tmp_path, suffix):
    load_or_located_error(tmp_path / f"questions{suffix}", b"[" * 5000 + b"]" * 5000)


@MANY
@given(records=st.lists(RECORDS, max_size=5), separator=st.sampled_from(["\n", "\r\n"]))
def test_any_json_records_as_jsonl_load_or_fail_with_a_location(tmp_path_factory, records, separator):
    data = separator.join(json.dumps(record, ensure_ascii=False) for record in records)
    load_or_located_error(tmp_path_factory.mktemp("qs") / "questions.jsonl", data.encode("utf-8", "surrogatepass"))


@MANY
@given(
    header=st.lists(st.sampled_from(["question", "answer", "id", "title", "context", "extra"]), max_size=5),
    rows=st.lists(st.lists(DELIVERABLE_TEXT, max_size=6), max_size=5),
)
def test_any_csv_rows_load_or_fail_with_a_location(tmp_path_factory, header, rows):
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    load_or_located_error(tmp_path_factory.mktemp("qs") / "questions.csv", out.getvalue().encode("utf-8"))


@MANY
@given(squad=squad_files())
def test_any_squad_shaped_json_loads_or_fails_with_a_location(tmp_path_factory, squad):
    data = json.dumps(squad, ensure_ascii=False).encode("utf-8", "surrogatepass")
    load_or_located_error(tmp_path_factory.mktemp("qs") / "questions.json", data)


# JSON leaves U+0085, U+2028 and U+2029 unescaped; the test below shows they survive.
QUESTION_TEXT = DELIVERABLE_TEXT.map(lambda text: re.sub("[\x85\u2028\u2029]", " ", text)).filter(str.strip)


@MANY
@given(questions=st.lists(st.tuples(QUESTION_TEXT, st.lists(QUESTION_TEXT, max_size=2)), min_size=1, max_size=4))
def test_any_valid_jsonl_question_set_loads_back_unchanged(tmp_path_factory, questions):
    lines = [json.dumps({"question": q, "answers": a}, ensure_ascii=False) for q, a in questions]
    loaded = load_or_located_error(tmp_path_factory.mktemp("qs") / "questions.jsonl", "\n".join(lines).encode())
    assert loaded is not None
    assert [(q.question, q.answers) for q in loaded.questions] == [
        (q.strip(), tuple(answer.strip() for answer in a)) for q, a in questions
    ]


def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path):
    line = json.dumps({"question": "Who\u2028said it?\x85", "answers": ["Pompeo"]}, ensure_ascii=False)
    loaded = load_or_located_error(tmp_path / "questions.jsonl", line.encode())
    assert loaded is not None and loaded.questions[0].question == "Who\u2028said it?"


# --- Article files: any bytes are a Document or a reason to skip. ------------------------------------

MARKUP = st.sampled_from(
    ["<html>", "<head>", "<title>", "</title>", "<body>", "<p>", "</p>", "<script>", "<!--", "-->", "<![CDATA[",
     "&amp;", "&#0;", "&#xD800;", "# ", "## ", "\n", "\n\n", "```", "<", ">", "\x00", "\ufeff", "[a](b)"]
)  # fmt: skip
ARTICLE_BYTES = ANY_BYTES | encoded(
    st.lists(st.one_of(MARKUP, st.text(st.one_of(ANY_CHARACTER, AWKWARD_CHARACTER), max_size=40)), max_size=25).map(
        "".join
    )
)


@pytest.fixture(scope="module")
def loader() -> ArticleLoader:
    return ArticleLoader(max_file_mb=1)


@MANY
@given(suffix=st.sampled_from([".txt", ".md", ".html", ".pdf", ".docx"]), data=ARTICLE_BYTES)
def test_any_bytes_in_an_article_file_give_a_document_or_a_reason_to_skip(loader, tmp_path_factory, suffix, data):
    path = tmp_path_factory.mktemp("article") / f"article{suffix}"
    path.write_bytes(data)
    loaded = loader.load(path)
    if isinstance(loaded, SkippedFile):
        assert loaded.path == str(path) and loaded.reason and "\n" not in loaded.reason
        return
    assert loaded.content and loaded.content.strip()
    assert isinstance(loaded.meta["title"], str) and loaded.meta["title"].strip()
    assert loaded.meta["source"] == str(path.resolve())
    passages = SentencePassageSplitter(passage_words=20).run(documents=[loaded])["documents"]
    for passage in passages:  # what indexing does next: the spans must point into the passage
        assert all(0 <= start <= end <= len(passage.content) for start, end in passage.meta["sentence_spans"])


# --- Index files: the pointer (CURRENT) and the manifest. --------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
REMOVED = object()


@pytest.fixture(scope="module")
def index_copy(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the seed index whose pointer and manifest each example overwrites, and its embedding id."""
    target = tmp_path_factory.mktemp("hostile-index") / "index"
    shutil.copytree(seed_index_dir, target)
    return target, QAEngine(make_settings(target)).embedding_id


def index_or_located_error(index_dir: Path, embedding_id: str) -> IndexData | None:
    """Load the index; any failure must be a one-line QabotError that names the index folder."""
    try:
        return load_index(index_dir, embedding_id)
    except QabotError as error:
        message = str(error)
        assert "\n" not in message and str(index_dir) in message, message
        assert error.exit_code == 2
        return None


@MANY
@given(target=st.sampled_from(["CURRENT", "manifest.json"]), data=ANY_BYTES)
def test_any_bytes_in_the_pointer_or_manifest_give_the_index_or_a_located_error(index_copy, target, data):
    index_dir, embedding_id = index_copy
    generation = current_generation(index_dir)
    assert generation is not None
    path = index_dir / target if target == "CURRENT" else generation / target
    original = path.read_bytes()
    try:
        path.write_bytes(data)
        loaded = index_or_located_error(index_dir, embedding_id)
        assert loaded is None or data.strip() == original.strip()
    finally:
        path.write_bytes(original)


@MANY
@given(data=st.data(), value=JSON_VALUES | st.just(REMOVED), consistent=st.booleans())
def test_any_json_in_a_manifest_field_gives_the_index_or_a_located_error(index_copy, data, value, consistent):
    """A field replaced by any JSON value (or removed), with the manifest's own checksum updated or not."""
    index_dir, embedding_id = index_copy
    generation = current_generation(index_dir)
    assert generation is not None
    path = generation / "manifest.json"
    original = path.read_bytes()
    manifest = json.loads(original)
    places = [(key,) for key in manifest]
    places += [("sources", source, key) for source in manifest["sources"] for key in ("file_hash", "passages")]
    places += [("checksums", name) for name in manifest["checksums"]]
    place = data.draw(st.sampled_from(places))
    holder = manifest
    for key in place[:-1]:
        holder = holder[key]
    if value is REMOVED:
        del holder[place[-1]]
    else:
        holder[place[-1]] = value
    if consistent:
        manifest["manifest_checksum"] = _manifest_digest(manifest)
    try:
        path.write_text(json.dumps(manifest))
        index_or_located_error(index_dir, embedding_id)
    finally:
        path.write_bytes(original)
