"""The Milvus backend against real Milvus: Milvus Lite on a local path, and `milvus-lite server` on
127.0.0.1 as a stand-in for a Milvus server (no mocks of Milvus anywhere).

It answers as the embedded backend does, keeps re-indexed, changed and removed articles right
(passages, sources and the term counts used for re-ranking), copies an embedded index without
embedding again, and fails in one line naming `store.uri` (never the token) when Milvus is away.
The Telegram bot apologises while Milvus is lost and answers again once it is back.

The tests on the network server are skipped only when milvus-lite cannot start on this machine.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.evaluation.questionsets import load_question_set
from bot.telegram.handlers import APOLOGY
from retrieval.engine import QAEngine
from retrieval.errors import IndexMissingError
from retrieval.stores.milvus.backend import MilvusStore
from retrieval.stores.milvus.connection import StoreUnavailableError
from retrieval.stores.milvus.vectors import unpack_vectors
from tests.conftest import MISSING_READER, SEED_ARTICLE, SEEDS, make_settings, one_line_error, run_qabot
from tests.milvus_server import MilvusLiteServer, free_port, milvus_lite_server
from tests.telegram_standin import capturing_logs, running_bot

QUESTION = "Who declared the talks dead?"
OLD_SENTENCE = "President Donald Trump declared the talks “dead” in September."
NEW_SENTENCE = "President Zebulon Quill declared the talks finished in September."
SECRET = "milvus-SECRET-token-7f3a9c"
BOT_TOKEN = "7000042:milvus-SECRET-bot-token"

# Each paragraph answers its question in one sentence (answers here are sentences: no reader model).
# The first title is not ASCII, as SQuAD's first title ("Beyoncé") is not.
QUESTION_SET = [
    {
        "id": "ribbon",
        "title": "Zürich harbour",
        "context": "The Zürich harbour bridge reopened on Monday after two years of repairs. "
        "Mayor Ana Lopez cut the ribbon in front of a large crowd. The repairs cost 40 million francs.",
        "question": "Who cut the ribbon at the harbour bridge?",
        "answers": ["Ana Lopez"],
    },
    {
        "id": "comet",
        "title": "A new comet",
        "context": "Astronomers at the Kestrel Observatory discovered a new comet in March. "
        "The comet was named Halvorsen after the student who first spotted it. "
        "It will pass closest to the Sun in 2031.",
        "question": "What was the new comet named?",
        "answers": ["Halvorsen"],
    },
    {
        "id": "orchard",
        "title": "Millbrook orchard",
        "context": "The Millbrook orchard harvested twelve tonnes of apples this autumn. "
        "Most of the apples were sold to a cider maker in Devon. Edith Marsh planted the orchard in 1952.",
        "question": "Who planted the Millbrook orchard in 1952?",
        "answers": ["Edith Marsh"],
    },
]
SMALL_ARTICLE = "Harbour news\n\nThe harbour ferry now sails every hour. Captain Ines Duarte runs the morning boats.\n"


def milvus_settings(index_dir: Path, uri: Path | str, collection: str = "qabot", **sections: Any):
    """The test settings of `make_settings` with the passages in Milvus at `uri`, in `collection`."""
    store = {"backend": "milvus", "uri": str(uri), "collection": collection, **sections.pop("store", {})}
    return make_settings(index_dir, store=store, **sections)


def same_answer(answer: Any) -> tuple[str, str, str, str, str]:
    return answer.kind, answer.text, answer.evidence, answer.title, answer.source


def passages_of(store: MilvusStore, source: str | None = None, fields: tuple[str, ...] = ("id", "content")):
    """The stored passage rows (of one source), read straight from the collection."""
    where = "" if source is None else f"source == {json.dumps(source, ensure_ascii=False)}"
    return store.client.query(store.collection, filter=where, output_fields=list(fields), limit=16_384)


def assert_terms_match_passages(store: MilvusStore) -> None:
    """The `_terms` table (re-ranking's term rarity) counts, per term, the passages that hold it."""
    expected: Counter[str] = Counter()
    for terms in store.tokenize([row["text"] for row in passages_of(store, fields=("id", "text"))]):
        expected.update(terms)
    rows = store.client.query(store.terms, filter="", output_fields=["id", "df"], limit=16_384)
    assert {row["id"]: row["df"] for row in rows} == dict(expected)


def assert_sources_match_passages(store: MilvusStore) -> None:
    """Each article's passage count in the source table is what the collection holds for it."""
    table = store.sources()
    held = Counter(row["source"] for row in passages_of(store, fields=("id", "source")))
    assert {source: entry["passages"] for source, entry in table.items()} == dict(held)
    assert store.count() == sum(held.values())


def milvus_env(tmp_path: Path, uri: str, collection: str = "qabot", **extra: str) -> dict[str, str]:
    """The environment for `qabot` on Milvus at `uri`, with this test's data folder and no reader."""
    return {
        "QABOT_MODELS_READER": MISSING_READER,
        "QABOT_DATA_DIR": str(tmp_path / "data"),
        "QABOT_STORE_BACKEND": "milvus",
        "QABOT_STORE_URI": uri,
        "QABOT_STORE_COLLECTION": collection,
        **extra,
    }


# --- Milvus Lite on a local path ------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Milvus Lite folder for this module's in-process tests (a collection each)."""
    return tmp_path_factory.mktemp("milvus-lite") / "milvus.db"


@pytest.fixture(scope="module")
def lite_engine(seed_index_dir: Path, lite_db: Path):
    """(engine, report): the seeds indexed into Milvus Lite; the settings are the seed engine's but
    for store.backend (and store.uri, which the embedded backend does not read)."""
    engine = QAEngine(milvus_settings(seed_index_dir, lite_db))
    return engine, engine.index_paths([SEEDS])


def test_seed_question_is_answered_on_milvus_lite_as_on_the_embedded_index(lite_engine, seed_engine):
    engine, report = lite_engine
    assert engine.store.backend == "milvus" and seed_engine.store.backend == "embedded"
    assert report.files_indexed == 1 and report.passages_added == len(seed_engine.index.passages)
    assert engine.store.count() == report.passages_total == len(seed_engine.index.passages)

    milvus, embedded = engine.ask(QUESTION), seed_engine.ask(QUESTION)

    assert "Donald Trump" in milvus.text
    assert same_answer(milvus) == same_answer(embedded)
    assert milvus.passages[0].id == embedded.passages[0].id
    assert milvus.score == pytest.approx(embedded.score, abs=0.02)
    assert_terms_match_passages(engine.store)
    assert_sources_match_passages(engine.store)


def test_question_set_paragraphs_are_indexed_and_answered(tmp_path, seed_index_dir, lite_db):
    questions_file = tmp_path / "set.jsonl"
    questions_file.write_text("\n".join(json.dumps(record, ensure_ascii=False) for record in QUESTION_SET))
    question_set = load_question_set(questions_file)
    engine = QAEngine(milvus_settings(seed_index_dir, lite_db, collection="question_set"))

    report = engine.index_documents(list(question_set.documents))

    assert report.files_indexed == 3
    gold_sources = {question.gold_source for question in question_set.questions}
    assert set(engine.store.sources()) == gold_sources and "Zürich harbour#0" in gold_sources
    for question in question_set.questions:
        answer = engine.ask(question.question)
        assert any(gold in answer.text for gold in question.answers), (question.question, answer.text)
        assert answer.source == question.gold_source
    assert_terms_match_passages(engine.store)


def test_collection_of_another_embedding_model_is_refused_naming_rebuild(lite_engine, seed_index_dir, lite_db):
    engine, _ = lite_engine
    # Float vectors instead of int8 ones: the same model and dimension, but not the same vectors.
    other = QAEngine(milvus_settings(seed_index_dir, lite_db, models={"quantize": False}))
    assert other.embedding_id != engine.embedding_id

    with pytest.raises(IndexMissingError) as caught:
        other.ask(QUESTION)

    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    assert "qabot index --rebuild" in message
    assert repr(engine.embedding_id) in message and repr(other.embedding_id) in message

    wider = MilvusStore(engine.settings, engine.embedding_id, engine.dimension * 2)
    with pytest.raises(IndexMissingError, match=r"dimension 384\).*dimension 768\).*qabot index --rebuild"):
        wider.check()


def test_store_copy_moves_the_embedded_index_to_milvus_without_embedding_again(tmp_path, seed_index_dir, seed_engine):
    copy_db = tmp_path / "copy.db"
    onnx_dir = tmp_path / "onnx"  # embedding anything would export the model here first
    env = milvus_env(tmp_path, str(copy_db), QABOT_STORE_BACKEND="embedded", QABOT_MODELS_ONNX_DIR=str(onnx_dir))

    result = run_qabot("store", "copy", "--to", "milvus", "--json", "--index", str(seed_index_dir), env=env)

    assert result.returncode == 0, result.stderr
    data = seed_engine.index
    assert json.loads(result.stdout)["copied"] == len(data.passages)
    assert not onnx_dir.exists() or not any(onnx_dir.iterdir()), "store copy ran the embedding model"

    engine = QAEngine(milvus_settings(seed_index_dir, copy_db))
    assert engine.store.count() == len(data.passages)
    assert same_answer(engine.ask(QUESTION)) == same_answer(seed_engine.ask(QUESTION))

    ids = [passage.id for passage in data.passages]
    rows = {row["id"]: row for row in engine.store.client.get("qabot", ids=ids, output_fields=["vector", "vectors"])}
    assert set(rows) == set(ids)
    starts = np.asarray(data.sentence_starts)
    for i, passage in enumerate(data.passages):
        row = rows[passage.id]
        np.testing.assert_array_equal(np.asarray(row["vector"], np.float32), data.passage_embeddings[i])
        sentences = len(passage.sentence_spans)
        np.testing.assert_array_equal(
            unpack_vectors(row["vectors"], sentences, engine.dimension),
            data.sentence_embeddings[int(starts[i]) : int(starts[i]) + sentences],
        )
    assert_terms_match_passages(engine.store)
    assert_sources_match_passages(engine.store)


# --- Milvus unreachable, and its token -------------------------------------------------------------


@pytest.fixture(scope="module")
def ask_unreachable(tmp_path_factory: pytest.TempPathFactory):
    """(result, uri): `qabot ask` with store.uri at a closed port, and MILVUS_TOKEN set."""
    tmp_path = tmp_path_factory.mktemp("unreachable")
    uri = f"http://127.0.0.1:{free_port()}"  # bound for a moment, then closed: nothing listens
    env = milvus_env(tmp_path, uri, QABOT_STORE_TIMEOUT="3", MILVUS_TOKEN=SECRET)
    return run_qabot("ask", QUESTION, env=env), uri


def test_chat_and_eval_work_on_milvus_lite_through_the_cli(tmp_path):
    """`qabot chat` fills an empty Milvus collection from index.corpus and answers; `qabot eval` runs
    the seed question set against it, as both do on the embedded index."""
    env = milvus_env(tmp_path, str(tmp_path / "cli.db"), QABOT_INDEX_CORPUS=str(SEEDS))
    chat = run_qabot("chat", input=f"{QUESTION}\n/quit\n", env=env)
    assert chat.returncode == 0, chat.stderr
    assert "index is empty" in chat.stderr and "Donald Trump" in chat.stdout
    summary = tmp_path / "eval.json"
    evaluation = run_qabot("eval", str(SEEDS / "questions.jsonl"), "--json-out", str(summary), env=env)
    assert evaluation.returncode == 0, evaluation.stderr
    result = json.loads(summary.read_text(encoding="utf-8"))
    assert result["n_questions"] == sum(1 for line in (SEEDS / "questions.jsonl").open() if line.strip())
    assert result["evidence_hit"] >= 0.75  # the seed floor of tests/test_eval_seeds.py, sentence answers
    assert "Traceback" not in chat.stderr + evaluation.stderr


def test_english_analyzer_on_milvus_lite_is_one_line_naming_the_setting(tmp_path):
    env = milvus_env(tmp_path, str(tmp_path / "english.db"), QABOT_STORE_ANALYZER="english")
    result = run_qabot("index", str(SEEDS), env=env)
    assert result.returncode == 2
    assert "store.analyzer" in one_line_error(result) and "Milvus Lite" in one_line_error(result)


def test_unreachable_milvus_is_one_line_naming_store_uri(ask_unreachable):
    result, uri = ask_unreachable
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert f"store.uri = {uri}" in line


def test_milvus_token_never_appears_in_errors_or_logs(ask_unreachable, tmp_path, caplog):
    # Milvus Lite's server takes any token (it has no users), so a refused token cannot be staged;
    # the connection fails at a closed port instead, with the token set, in the CLI and in-process.
    result, _ = ask_unreachable
    assert result.returncode == 2
    assert SECRET not in result.stdout + result.stderr

    uri = f"http://127.0.0.1:{free_port()}"
    store = MilvusStore(make_settings(tmp_path / "index", store={"uri": uri, "timeout": 3}), "model", 384, SECRET)
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreUnavailableError) as caught:
        store.count()
    assert f"store.uri = {uri}" in str(caught.value) and SECRET not in str(caught.value)
    assert SECRET not in caplog.text


# --- Milvus over the network: `milvus-lite server` on 127.0.0.1 ------------------------------------


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory: pytest.TempPathFactory):
    """A Milvus Lite server on a free port for the module; skipped only if milvus-lite cannot start."""
    with milvus_lite_server(tmp_path_factory.mktemp("milvus-server") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def net_engine(milvus_server: MilvusLiteServer, tmp_path_factory: pytest.TempPathFactory):
    """An engine on the server (store.uri = http://127.0.0.1:PORT) with the seeds indexed."""
    engine = QAEngine(milvus_settings(tmp_path_factory.mktemp("net") / "index", milvus_server.uri))
    report = engine.index_paths([SEEDS])
    assert report.files_indexed == 1
    return engine


def test_seed_question_is_answered_over_the_network(net_engine, seed_engine, milvus_server):
    assert net_engine.store.location == f"Milvus collection qabot at {milvus_server.uri}"
    answer = net_engine.ask(QUESTION)
    assert "Donald Trump" in answer.text
    assert same_answer(answer) == same_answer(seed_engine.ask(QUESTION))


def test_reindexing_keeps_unchanged_files_and_replaces_changed_ones(milvus_server, tmp_path):
    article = tmp_path / "articles" / "Zürich talks.txt"  # a name that is not ASCII
    article.parent.mkdir()
    shutil.copy(SEED_ARTICLE, article)
    engine = QAEngine(milvus_settings(tmp_path / "index", milvus_server.uri, collection="changes"))
    first = engine.index_paths([article])
    total = engine.store.count()
    assert first.files_indexed == 1 and first.passages_total == total > 0

    again = engine.index_paths([article])

    assert (again.files_unchanged, again.files_indexed, again.passages_added) == (1, 0, 0)
    assert again.passages_total == engine.store.count() == total

    text = SEED_ARTICLE.read_text(encoding="utf-8")
    assert OLD_SENTENCE in text
    article.write_text(text.replace(OLD_SENTENCE, NEW_SENTENCE), encoding="utf-8")

    changed = engine.index_paths([article])

    assert (changed.files_indexed, changed.files_changed, changed.files_unchanged) == (1, 1, 0)
    assert changed.passages_total == engine.store.count() == total  # one sentence changed, not their number
    source = str(article.resolve())
    stored = [row["content"] for row in passages_of(engine.store, source)]
    assert len(stored) == total
    assert not any(OLD_SENTENCE in content for content in stored)
    assert any(NEW_SENTENCE in content for content in stored)
    assert "Zebulon Quill" in engine.ask("Who declared the talks finished?").text
    old = engine.ask(QUESTION)
    assert "Donald Trump" not in old.text and not any(OLD_SENTENCE in p.text for p in old.passages)
    assert_terms_match_passages(engine.store)
    assert_sources_match_passages(engine.store)


def test_removed_article_is_gone_from_milvus_and_from_qabot_sources(milvus_server, tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(SEED_ARTICLE, folder / "talks.txt")
    (folder / "harbour.txt").write_text(SMALL_ARTICLE, encoding="utf-8")
    talks, harbour = str((folder / "talks.txt").resolve()), str((folder / "harbour.txt").resolve())
    engine = QAEngine(milvus_settings(tmp_path / "index", milvus_server.uri, collection="removal"))
    engine.index_paths([folder])
    assert set(engine.store.sources()) == {talks, harbour}
    kept = engine.store.sources()[harbour]["passages"]

    report = engine.remove_sources([talks])

    assert report.sources_dropped == 1 and report.passages_total == kept == engine.store.count()
    assert passages_of(engine.store, talks) == []
    listed = run_qabot("sources", "--json", env=milvus_env(tmp_path, milvus_server.uri, "removal"))
    assert listed.returncode == 0, listed.stderr
    assert set(json.loads(listed.stdout)["sources"]) == {harbour}
    assert engine.ask(QUESTION).source != talks
    assert_terms_match_passages(engine.store)
    assert_sources_match_passages(engine.store)


def test_bot_apologises_while_milvus_is_lost_and_answers_once_it_is_back(net_engine, milvus_server, tmp_path):
    def settings_for(base_url: str):
        return milvus_settings(tmp_path / "index", milvus_server.uri, telegram={"base_url": base_url})

    chat = 7001
    with capturing_logs() as logs, running_bot(BOT_TOKEN, net_engine, settings_for) as (api, _):
        [before] = api.ask(chat, QUESTION)
        assert "Donald Trump" in before.visible_text

        milvus_server.kill()
        api.send_text(chat, QUESTION)
        apologies = api.wait_for(
            lambda: [m for m in api.messages(chat) if m.number > before.number and m.visible_text == APOLOGY],
            timeout=60,
            what="an apology",
        )
        assert len(apologies) == 1 and apologies[0].chat_id == chat
        assert f"store.uri = {milvus_server.uri}" in logs.text  # the operator learns why
        assert "Traceback" not in logs.text  # a known failure, logged in one line
        polls = api.received("getUpdates")
        api.wait_for(lambda: api.received("getUpdates") > polls, what="the bot to poll again")

        milvus_server.start()
        [after] = api.ask(chat, QUESTION)
        assert "Donald Trump" in after.visible_text
    assert BOT_TOKEN not in logs.text


def test_milvus_lost_after_start_reaches_the_caller_as_store_unavailable(net_engine, milvus_server):
    assert "Donald Trump" in net_engine.ask(QUESTION).text  # the pipeline is built and connected
    milvus_server.kill()
    try:
        with pytest.raises(StoreUnavailableError, match="store.uri"):
            net_engine.ask(QUESTION)
    finally:
        milvus_server.start()
    assert "Donald Trump" in net_engine.ask(QUESTION).text
