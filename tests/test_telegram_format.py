"""Answers as Telegram HTML: every piece of text escaped, the answer highlighted, long messages split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.telegram.format import (
    MESSAGE_LIMIT,
    Block,
    Span,
    format_answer,
    format_sources,
    format_welcome,
    telegram_length,
    to_chunks,
)
from retrieval.answering.answer import Answer, Passage
from tests.telegram_standin import telegram_html_to_text


def text_of(chunks: list[str]) -> str:
    """What the user reads, each chunk checked to be HTML that Telegram accepts."""
    return "\n".join(telegram_html_to_text(chunk) for chunk in chunks)


EVIDENCE = "Officials said <Trump> & aides declared the talks “dead” in September."
EXTRACTIVE = Answer(
    question="Who declared the <talks> dead?",
    text="<Trump> & aides",
    score=0.873,
    kind="extractive",
    evidence=EVIDENCE,
    title="Talks & <deals>",
    source="/srv/private/articles/talks.txt",
    passages=(Passage("p1", "A passage about <talks> & more.", "Talks & <deals>", "/srv/private/talks.txt", 0.91),),
    answer_start=EVIDENCE.index("<Trump>"),
    answer_end=EVIDENCE.index("<Trump>") + len("<Trump> & aides"),
)


def test_extractive_answer_shows_bold_answer_confidence_title_and_highlighted_evidence():
    [chunk] = format_answer(EXTRACTIVE)
    assert chunk.startswith("<b>&lt;Trump&gt; &amp; aides</b>\n")
    assert "Confidence 87%" in chunk and "<i>Talks &amp; &lt;deals&gt;</i>" in chunk
    assert (
        "<blockquote>Officials said <b>&lt;Trump&gt; &amp; aides</b> declared the talks “dead” in September."
        "</blockquote>"
    ) in chunk
    assert EVIDENCE in text_of([chunk])


def test_answer_without_a_located_span_shows_the_evidence_plainly():
    [chunk] = format_answer(Answer("q", "Trump", 0.5, "extractive", evidence="He spoke.", title="T"))
    assert "<blockquote>He spoke.</blockquote>" in chunk


def test_web_source_makes_the_title_a_link_with_an_escaped_address():
    answer = Answer("q", "x", 0.5, "extractive", title="T", source='https://news.example/a?b=1&c="2"')
    [chunk] = format_answer(answer)
    assert '<a href="https://news.example/a?b=1&amp;c=&quot;2&quot;">T</a>' in chunk


def test_sentence_answer_is_worded_as_a_sentence():
    sentence = "President Donald Trump declared the talks “dead” in September."
    answer = Answer("Who?", sentence, 0.62, "sentence", evidence=sentence, answer_start=0, answer_end=len(sentence))
    text = text_of(format_answer(answer))
    assert text.startswith("No exact answer; this sentence from the articles looks most relevant:\n")
    assert text.count(sentence) == 1  # not repeated as evidence


def test_unknown_answer_says_i_dont_know_and_echoes_the_question_escaped():
    [chunk] = format_answer(Answer("Is <b>x</b> & y?", "", 0.0, "none", notices=("cut <short>",)))
    assert "I don't know" in chunk and "&lt;b&gt;x&lt;/b&gt; &amp; y?" in chunk
    assert "Is <b>x</b> & y?" in text_of([chunk]) and "cut <short>" in text_of([chunk])


def test_sources_name_the_article_by_its_title_without_file_names_or_scores():
    text = text_of(format_sources(EXTRACTIVE))
    assert text == "📰 Talks & <deals>"
    assert "/srv/private" not in text and "talks.txt" not in text and "0.91" not in text


def _passage(number: int, score: float, title: str = "", url: str = "", published: str = "") -> Passage:
    source = url or f"/srv/articles/{number:03d}_2702eb2bcdd00dd6.txt"
    return Passage(f"p{number}", "text", title or f"Article {number}", source, score, published, url)


def test_sources_add_at_most_two_close_runners_up_from_other_articles():
    passages = (
        _passage(1, 1.0, published="2026-03-01"),
        _passage(1, 0.95),  # the same article again: not a runner-up
        _passage(2, 0.9, url="https://news.example/two", published="2026-03-02"),
        _passage(3, 0.85),
        _passage(4, 0.82),
        _passage(5, 0.5),  # not close: under RUNNER_UP_SHARE of the best
    )
    source = passages[0].source
    answer = Answer(
        "q", "x", 0.9, "extractive", title="Article 1", source=source, passages=passages, published="2026-03-01"
    )
    [chunk] = format_sources(answer)
    text = telegram_html_to_text(chunk)
    assert text.splitlines() == [
        "📰 Article 1 · 2026-03-01",
        "Other articles that came close:",
        "• Article 2 · 2026-03-02",
        "• Article 3",
    ]
    assert '<a href="https://news.example/two">Article 2</a>' in chunk
    assert "2702eb2b" not in chunk and "0.9" not in chunk


def test_sources_after_i_dont_know_name_the_articles_looked_at_in_one_line():
    passages = (_passage(1, 0.4, "A"), _passage(2, 0.3, "B"), _passage(1, 0.2, "A"), _passage(3, 0.1, "C"))
    text = text_of(format_sources(Answer("q", "", 0.0, "none", passages=passages)))
    assert text == "I looked at 3 articles: “A”, “B” and “C”."


def test_sources_before_any_question_explain_what_to_do():
    assert "Ask a question first" in text_of(format_sources(None))


def test_welcome_shows_examples_escaped():
    text = telegram_html_to_text(format_welcome(["What about <this> & that?"]))
    assert "What about <this> & that?" in text


def test_long_answer_is_split_into_valid_chunks_within_the_limit():
    answer = Answer("q", ("Trump & <co> said no. " * 250)[:5000], 0.5, "sentence", title="T")
    chunks = format_answer(answer)
    assert len(chunks) == 2
    texts = [telegram_html_to_text(chunk) for chunk in chunks]
    assert all(telegram_length(text) <= MESSAGE_LIMIT for text in texts)
    assert answer.text in "".join(texts)
    assert all(chunk.count("<b>") == chunk.count("</b>") for chunk in chunks)


def test_limit_counts_utf16_units_as_telegram_does():
    chunks = to_chunks([Block((Span("😀" * 3000),))])  # 6,000 UTF-16 units
    assert len(chunks) == 2
    assert all(telegram_length(chunk) <= MESSAGE_LIMIT for chunk in chunks)
    assert "".join(chunks) == "😀" * 3000


def test_blocks_are_kept_whole_when_they_fit():
    chunks = to_chunks([Block((Span("a" * 6),)), Block((Span("b" * 6),)), Block((Span("c" * 3),))], limit=10)
    assert chunks == ["aaaaaa", "bbbbbb\nccc"]


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=60), st.sampled_from(["", "b", "i", "code"])), min_size=1, max_size=12
    ),
    st.integers(min_value=8, max_value=80),
)
def test_any_text_splits_into_valid_chunks_within_the_limit(spans, limit):
    blocks = [Block((Span(text, tag),), "blockquote" if tag == "i" else "") for text, tag in spans]
    chunks = to_chunks(blocks, limit=limit)
    texts = [telegram_html_to_text(chunk) for chunk in chunks]
    assert all(telegram_length(text) <= limit for text in texts)
    assert "".join(texts).replace("\n", "") == "".join(text for text, _ in spans).replace("\n", "")


def test_a_limit_too_small_for_any_text_is_an_error():
    with pytest.raises(ValueError):
        to_chunks([Block((Span("😀"),))], limit=1)


@given(st.floats(min_value=0.0, max_value=1.0))
def test_a_shown_confidence_never_reads_higher_than_the_score(score):
    from bot.words import shown_score

    shown = shown_score(score)
    assert shown <= score + 1e-9 and score - shown < 0.01 + 1e-9
    assert f"{shown_score(0.857):.2f}" == "0.85" and f"{shown_score(0.29):.0%}" == "29%"
