"""The sentence reader: token vectors from the real embedding model, late-interaction scoring, the cache."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from haystack import Document

from retrieval.answering.rerank import SentenceEvidenceRanker
from retrieval.answering.sentence_reader import SentenceReader
from retrieval.engine import QAEngine
from retrieval.models.embedders import OnnxEmbedder
from retrieval.models.resolve import resolve_model
from retrieval.stores.embedded.retrievers import BM25PassageRetriever, row_document
from tests.conftest import make_settings

PASSAGE = "President Donald Trump declared the talks “dead” in September. Nobody expected that."


@pytest.fixture(scope="module")
def model_path():
    return resolve_model("sentence-transformers/all-MiniLM-L6-v2").path


def test_token_vectors_match_sentence_transformers_token_embeddings(model_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_path), device="cpu").encode([PASSAGE], output_value="token_embeddings")[0]
    reference = np.asarray(reference)[1:-1]  # without [CLS] and [SEP]
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    (tokens,) = OnnxEmbedder(model_path, tmp_path).token_vectors([PASSAGE])
    assert tokens.vectors.shape == reference.shape
    assert np.allclose(np.linalg.norm(tokens.vectors, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(tokens.vectors * reference, axis=1)) > 0.9999
    words = [PASSAGE[start:end] for start, end in tokens.offsets]
    assert words[:4] == ["President", "Donald", "Trump", "declared"]


def test_a_long_passage_is_read_up_to_the_model_limit_not_the_pooling_limit(model_path, tmp_path):
    text = " ".join(["word"] * 700)
    short, long = OnnxEmbedder(model_path, tmp_path, quantize=True).token_vectors(["Who?", text])
    assert len(short.ids) == 2
    assert len(long.ids) == 510  # 512 positions less [CLS] and [SEP]; sentence pooling stops at 256


@pytest.fixture(scope="module")
def amazon_engine(tmp_path_factory):
    """An index of one article in which the answer sentence names its topic only as "this region"."""
    article = Document(
        content=(
            "The Amazon rainforest covers much of the Amazon basin of South America. "
            "This basin encompasses seven million square kilometres. "
            "This region includes territory belonging to nine nations. "
            "The majority of the forest is contained within Brazil, with 60% of the rainforest."
        ),
        meta={"title": "Amazon rainforest", "source": "amazon.txt"},
    )
    engine = QAEngine(make_settings(tmp_path_factory.mktemp("amazon") / "index"))
    engine.index_documents([article])
    engine.warm_up()
    return engine


def test_the_answer_sentence_is_found_through_the_sentence_before_it(amazon_engine):
    answer = amazon_engine.ask("How many nations are within the Amazon basin?")
    assert answer.kind == "sentence"
    assert answer.text == "This region includes territory belonging to nine nations."


def test_every_sentence_gets_a_score_between_0_and_1(amazon_engine):
    reader = amazon_engine.pipeline.get_component("answerer")
    (document,) = _documents(amazon_engine)
    (scores,) = reader.sentence_scores("How many nations are within the Amazon basin?", [document])
    assert len(scores) == len(amazon_engine.index.passages[0].sentence_spans) == 4
    assert np.all((scores >= 0) & (scores <= 1))
    earlier = reader.sentence_scores("Where is it?", [document], context="How many nations share the Amazon basin?")
    alone = reader.sentence_scores("Where is it?", [document])
    assert not np.allclose(earlier[0], alone[0]), "an earlier question changes the scores"


class CountingEncoder:
    """The real encoder, counting the passages it is asked to read."""

    def __init__(self, encoder: OnnxEmbedder) -> None:
        self.encoder = encoder
        self.read: list[str] = []

    def __getattr__(self, name):
        return getattr(self.encoder, name)

    def token_vectors(self, texts):
        self.read.extend(texts)
        return self.encoder.token_vectors(texts)


def _documents(engine: QAEngine) -> list[Document]:
    return [row_document(engine.index, row, 0.0) for row in range(len(engine.index))]


def test_passages_read_once_are_taken_from_the_cache(seed_engine):
    encoder = CountingEncoder(seed_engine._onnx)
    reader = SentenceReader(encoder, passages=2)  # type: ignore[arg-type]
    documents = _documents(seed_engine)[:2]
    first = reader.run(query="Who declared the talks dead?", documents=documents)["answer"]
    passages_read = [text for text in encoder.read if text in {d.content for d in documents}]
    assert len(passages_read) == 2
    second = reader.run(query="When did Pompeo speak?", documents=documents)["answer"]
    assert [text for text in encoder.read if text in {d.content for d in documents}] == passages_read
    assert first is not None and second is not None


def test_the_cache_keeps_only_the_most_recent_passages(seed_engine):
    encoder = CountingEncoder(seed_engine._onnx)
    reader = SentenceReader(encoder, passages=2, cache=1)  # type: ignore[arg-type]
    documents = _documents(seed_engine)[:2]
    reader.run(query="Who declared the talks dead?", documents=documents)
    assert len(reader._readings) == 1
    assert next(iter(reader._readings)).startswith(f"{documents[1].id}:")


def _ranked(document: Document, score: float, source: str, best: int = 0) -> Document:
    return Document(
        id=document.id,
        content=document.content,
        meta={**document.meta, "sentence_score": score, "best_sentence": best, "source": source},
    )


def test_a_second_passage_is_read_only_when_nearly_as_good_and_not_a_copy(seed_engine):
    reader = SentenceReader(seed_engine._onnx, passages=3, margin=0.05)
    first, second, third = _documents(seed_engine)[:3]
    near = [_ranked(first, 0.8, "a"), _ranked(second, 0.78, "a"), _ranked(third, 0.6, "a")]
    assert [d.id for d in reader._worth_reading(near)] == [first.id, second.id]
    copy = [_ranked(first, 0.8, "a"), _ranked(first, 0.8, "syndicated elsewhere")]
    assert [d.id for d in reader._worth_reading(copy)] == [first.id]


def test_only_the_sentences_around_the_best_one_are_read(seed_engine):
    encoder = CountingEncoder(seed_engine._onnx)
    reader = SentenceReader(encoder, passages=1, window=(1, 1))  # type: ignore[arg-type]
    (document,) = _documents(seed_engine)[:1]
    spans = seed_engine.index.passages[0].sentence_spans
    assert len(spans) >= 4
    ranked = _ranked(document, 0.8, "a", best=2)
    (scores,) = reader.sentence_scores("Who declared the talks dead?", [ranked])
    assert encoder.read[-1] == document.content[spans[1][0] : spans[3][1]]
    assert scores[0] == 0 and all(scores[k] > 0 for k in (1, 2, 3))


def test_a_question_without_content_words_is_still_read(seed_engine):
    reader = SentenceReader(seed_engine._onnx, min_score=0.0)
    answer = reader.run(query="Why?", documents=_documents(seed_engine)[:2])["answer"]
    assert answer is not None and answer.meta["kind"] == "sentence"


def test_no_passages_give_no_answer(seed_engine):
    reader = SentenceReader(seed_engine._onnx)
    assert reader.run(query="Who declared the talks dead?", documents=[])["answer"] is None


def test_the_question_is_run_through_the_model_once_for_search_and_reading(amazon_engine):
    reader = amazon_engine.pipeline.get_component("answerer")
    counting = CountingEncoder(reader.encoder)
    reader.encoder = counting
    try:
        answer = amazon_engine.ask("Which country holds most of the forest?")
    finally:
        reader.encoder = counting.encoder
    assert answer.kind == "sentence"
    assert "Which country holds most of the forest?" not in counting.read


class CountingLexicon:
    """The index's real lexicon, counting the texts whose terms it is asked for."""

    def __init__(self, lexicon) -> None:
        self.lexicon = lexicon
        self.texts: list[str] = []

    def terms(self, texts):
        self.texts += texts
        return self.lexicon.terms(texts)

    def idf(self, terms):
        return self.lexicon.idf(terms)


def test_the_ranker_keeps_each_passages_sentence_terms_while_the_lexicon_stays(seed_engine):
    retriever = BM25PassageRetriever(seed_engine.index)
    retriever.warm_up()
    real = retriever.lexical
    lexicon = CountingLexicon(real)
    documents = [replace(d, score=1.0) for d in _documents(seed_engine)[:3]]
    ranker = SentenceEvidenceRanker(lexicon=lambda: lexicon, cache=2)
    vector = seed_engine._onnx.embed(["Who declared the talks dead?"])[0]
    first = ranker.run(query_embedding=vector, question="Who declared the talks dead?", documents=documents)
    read_once = len(lexicon.texts)
    assert read_once > 2 + 3  # the question and its (empty) context, and every sentence of three passages
    again = ranker.run(query_embedding=vector, question="Who declared the talks dead?", documents=documents[1:])
    assert len(lexicon.texts) == read_once + 2  # only the question and its context: both passages were kept
    assert [d.meta["best_sentence"] for d in again["documents"]] == [
        d.meta["best_sentence"] for d in first["documents"] if d.id != documents[0].id
    ]
    other = CountingLexicon(real)  # a new index generation: its terms are read afresh
    ranker.lexicon = lambda: other
    ranker.run(query_embedding=vector, question="Who declared the talks dead?", documents=documents[1:])
    assert len(other.texts) > 2
