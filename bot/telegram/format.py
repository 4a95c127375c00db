"""Telegram renderings of qabot's answers: Telegram-flavoured HTML, every piece of text escaped.

Pure functions, no `telegram` import: the handlers in `bot/telegram/handlers.py` send what these return.
A message is built from blocks (lines) of styled spans, so that one longer than Telegram's
4,096-character limit can be cut between blocks, or inside a span, into valid HTML chunks.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath

from bot.dates import with_date_meant
from bot.sources import NO_QUESTION_FOR_SOURCES, OWN_WORDS, Article, looked_at_line, sources_of
from bot.words import BAND_WORDS, NO_QUESTION_FOR_MORE, UNSURE_LEAD, no_other_answers, shown_score
from retrieval.answering.answer import Answer

# Telegram refuses messages longer than this: UTF-16 code units of the text after HTML parsing.
MESSAGE_LIMIT = 4096


@dataclass(frozen=True)
class Span:
    """A piece of plain text and the inline tag it is shown in ("" for none, "b", "i", "code", ...)."""

    text: str
    tag: str = ""
    href: str = ""


@dataclass(frozen=True)
class Block:
    """One line of a message; `wrapper` is a block tag such as "blockquote"."""

    spans: tuple[Span, ...]
    wrapper: str = ""


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Escape text for Telegram HTML (quotes only matter inside attributes)."""
    return html.escape(text, quote=False)


def render_span(span: Span) -> str:
    body = escape(span.text)
    if span.href:
        return f'<a href="{html.escape(span.href, quote=True)}">{body}</a>'
    return f"<{span.tag}>{body}</{span.tag}>" if span.tag else body


def render_block(block: Block) -> str:
    body = "".join(render_span(span) for span in block.spans)
    if not block.wrapper:
        return body
    return f"<{block.wrapper}>{body}</{block.wrapper.split()[0]}>"


def visible_length(block: Block) -> int:
    """What a block counts towards Telegram's limit, which applies to the text after parsing."""
    return sum(telegram_length(span.text) for span in block.spans)


def _largest_fitting_cut(text: str, room: int) -> int:
    """The length of the longest prefix of `text` within `room` UTF-16 units, cut at a space if possible."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if telegram_length(text[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    space = text.rfind(" ", 0, low)
    return space + 1 if space > low // 2 else low


def _cut_block(block: Block, room: int) -> tuple[Block | None, Block | None]:
    """The longest head of `block` within `room`, and the rest (None when empty)."""
    head: list[Span] = []
    used = 0
    for index, span in enumerate(block.spans):
        length = telegram_length(span.text)
        if used + length <= room:
            head.append(span)
            used += length
            continue
        cut = _largest_fitting_cut(span.text, room - used)
        if cut:
            head.append(replace(span, text=span.text[:cut]))
        rest = (replace(span, text=span.text[cut:]), *block.spans[index + 1 :])
        return (Block(tuple(head), block.wrapper) if head else None), Block(rest, block.wrapper)
    return block, None


def to_chunks(blocks: Iterable[Block], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Render blocks as HTML messages of at most `limit` visible UTF-16 units, one block per line.

    Blocks are kept whole where they fit; one too long for any message fills up the current
    message and continues in the next ones.
    """
    chunks: list[str] = []
    current: list[Block] = []
    used = 0
    for block in blocks:
        length = visible_length(block)
        room = limit - used - 1 if current else limit  # a newline joins blocks
        if length <= room:
            current.append(block)
            used += length + (1 if len(current) > 1 else 0)
            continue
        if length <= limit:
            chunks.append(_render_lines(current))
            current, used = [block], length
            continue
        if room < limit // 8:  # too little left to be worth filling: start the next message
            chunks.append(_render_lines(current))
            current, room = [], limit
        head, rest = _cut_block(block, room)
        if head is not None:
            current.append(head)
        while rest is not None:
            if current:
                chunks.append(_render_lines(current))
            head, rest = _cut_block(rest, limit)
            if head is None:
                raise ValueError(f"a message limit of {limit} is too small to hold any text")
            current, used = [head], visible_length(head)
    if current:
        chunks.append(_render_lines(current))
    return chunks


def _render_lines(blocks: Sequence[Block]) -> str:
    return "\n".join(render_block(block) for block in blocks)


def _text(text: str, tag: str = "") -> Block:
    return Block((Span(text, tag),))


def _title_span(title: str, source: str) -> Span:
    """The article title, a link when the source is a web address."""
    name = title or _source_name(source) or "untitled article"
    if source.startswith(("http://", "https://")):
        return Span(name, href=source)
    return Span(name, "i")


def _date_spans(published: str) -> tuple[Span, ...]:
    """The article's date, shown beside its title."""
    return (Span(f" · {published}"),) if published else ()


def _source_name(source: str) -> str:
    """A web address as is; for a file only its name (server paths are nobody's business)."""
    if source.startswith(("http://", "https://")):
        return source
    return PurePath(source).name if source else ""


def _highlighted(evidence: str, start: int, end: int) -> tuple[Span, ...]:
    if 0 <= start < end <= len(evidence):
        parts = (Span(evidence[:start]), Span(evidence[start:end], "b"), Span(evidence[end:]))
        return tuple(part for part in parts if part.text)
    return (Span(evidence),)


def answer_blocks(answer: Answer) -> list[Block]:
    """The blocks of one answer: the answer in bold, confidence and title, the highlighted evidence."""
    if answer.kind == "reply":
        blocks = [_text(answer.text)]
    elif not answer.known:
        blocks = [
            Block(
                (
                    Span("🤷 I don't know. I found no answer to “"),
                    Span(answer.question, "i"),
                    Span("” in the indexed articles."),
                )
            )
        ]
    else:
        blocks = []
        title = _title_span(answer.title, answer.url or answer.source)
        confidence = Span(f"Confidence {shown_score(answer.score):.0%}, {BAND_WORDS[answer.confidence]} · ")
        evidence = _highlighted(answer.evidence, answer.answer_start, answer.answer_end)
        if answer.confidence != "sure":  # the closest passage's sentence, the span in it highlighted
            blocks.append(_text(UNSURE_LEAD, "i"))
            blocks.append(Block(evidence, "blockquote"))
        else:
            if answer.kind == "sentence":
                blocks.append(_text("No exact answer; this sentence from the articles looks most relevant:", "i"))
            blocks.append(_text(with_date_meant(answer.text, answer.published), "b"))
        blocks.append(Block((confidence, title, *_date_spans(answer.published))))
        if answer.confidence == "sure" and answer.evidence and answer.evidence.strip() != answer.text.strip():
            blocks.append(Block(evidence, "blockquote"))
    blocks.extend(_text(f"ℹ️ {notice}", "i") for notice in answer.notices)
    return blocks


def format_answer(answer: Answer, limit: int = MESSAGE_LIMIT) -> list[str]:
    """An answer as one or more Telegram HTML messages."""
    return to_chunks(answer_blocks(answer), limit)


def _article_spans(article: Article) -> tuple[Span, ...]:
    """An article's title (a link for a web article) and date."""
    title = Span(article.title, href=article.url) if article.url else Span(article.title, "i")
    return (title, *_date_spans(article.published))


def format_sources(answer: Answer | None, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Where the last answer came from, for /sources: its article and at most two close runners-up
    from other articles; after "I don't know", the articles looked at. One short message."""
    if answer is None:
        return to_chunks([_text(NO_QUESTION_FOR_SOURCES)], limit)
    if answer.kind == "reply":
        return to_chunks([_text(OWN_WORDS)], limit)
    found = sources_of(answer)
    if found.article is None:
        return to_chunks([_text(looked_at_line(found.looked_at))], limit)
    blocks = [Block((Span("📰 "), *_article_spans(found.article)))]
    if found.runners_up:
        blocks.append(_text("Other articles that came close:"))
        blocks.extend(Block((Span("• "), *_article_spans(article))) for article in found.runners_up)
    return to_chunks(blocks, limit)


def format_more(answer: Answer | None, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The other answers found for the last question, for /more."""
    if answer is None:
        return to_chunks([_text(NO_QUESTION_FOR_MORE)])
    if not answer.alternatives:
        return to_chunks([_text(no_other_answers(answer.question))])
    blocks = [Block((Span("Other answers to “"), Span(answer.question, "i"), Span("”:")))]
    for number, other in enumerate(answer.alternatives, start=1):
        title = _title_span(other.title, other.url or other.source)
        shown = Span(with_date_meant(other.text, other.published), "b")
        blocks.append(Block((Span(f"{number}. "), shown, Span(f" ({shown_score(other.score):.0%}) · "), title)))
        start = other.evidence.find(other.text)
        blocks.append(Block(_highlighted(other.evidence, start, start + len(other.text)), "blockquote"))
    return to_chunks(blocks, limit)


def format_welcome(examples: Sequence[str]) -> str:
    """The /start greeting with example questions about the indexed articles."""
    blocks = [_text("👋 Hi! I answer questions about the news articles I have read.")]
    if examples:
        blocks.append(_text("Try for example:"))
        blocks.extend(Block((Span("• "), Span(example, "i"))) for example in examples)
    blocks.append(_text("Just send me a question. /help lists what else I can do."))
    return to_chunks(blocks)[0]


# The bot's commands and what each does: listed by /help and in Telegram's command menu.
COMMANDS = (
    ("ask", "ask a question (in groups: also mention me or reply to me)"),
    ("sources", "the article behind my last answer, and others that came close"),
    ("more", "the other answers I found for the last question"),
    ("about", "what I have read: articles, sources, the newest, the reader model"),
    ("add", "add a news article by its address (admins only; sending the link works too)"),
    ("list", "the newest articles with their ids (admins only)"),
    ("remove", "remove an article by its id from /list (admins only)"),
    ("feeds", "the feeds and when they were last read (admins only)"),
    ("reset", "forget the conversation so far"),
    ("start", "the welcome, with example questions"),
    ("help", "this message"),
)
_ARGUMENTS = {"ask": " <i>question</i>", "add": " <i>URL</i>", "remove": " <i>id</i>"}
HELP_TEXT = "\n".join(
    [
        "<b>How to use me</b>",
        "Send a question as a message and I answer from the indexed news articles.",
        "Follow-up questions (“When did he say that?”) are understood in context.",
        "",
        *(f"/{command}{_ARGUMENTS.get(command, '')} – {escape(words)}" for command, words in COMMANDS),
        "",
        "Rate my answers with 👍 or 👎: it helps improve me.",
    ]
)


def plain(message: str) -> str:
    """A plain-text notice as Telegram HTML."""
    return escape(message)
