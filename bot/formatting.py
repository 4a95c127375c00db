"""Rendering an Answer for the terminal (rich): the answer, how sure, and where it came from."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bot.dates import with_date_meant
from bot.sources import NO_QUESTION_FOR_SOURCES, OWN_WORDS, Article, looked_at_line, sources_of
from bot.words import BAND_WORDS, NO_QUESTION_FOR_MORE, UNSURE_LEAD, no_other_answers, plural, shown_score
from retrieval.answering.answer import Answer
from retrieval.ingest.feeds import WebReport

KIND_LABELS = {
    "extractive": "answer found in the text",
    "sentence": "best-matching sentence (no extractive model loaded)",
    "none": "not found",
    "reply": "the bot's own reply",
}
DONT_KNOW = "I don't know: the indexed articles do not seem to answer that."


def highlighted_evidence(answer: Answer) -> Text:
    """The evidence sentence with the answer span in bold."""
    text = Text(answer.evidence)
    if answer.kind == "extractive" and 0 <= answer.answer_start < answer.answer_end:
        text.stylize("bold yellow", answer.answer_start, answer.answer_end)
    return text


def render_answer(answer: Answer) -> RenderableType:
    """The answer as the CLI shows it: a sure answer as the answer; an unsure one as what the closest
    passage says, its span highlighted; else "I don't know"."""
    if answer.kind == "reply":
        return Text(answer.text)
    if not answer.known:
        return Text(DONT_KNOW, style="bold")
    rows = Table.grid(padding=(0, 1))
    rows.add_column(style="dim", justify="right")
    rows.add_column()
    sure = answer.confidence == "sure"
    if sure:
        shown = with_date_meant(answer.text, answer.published)
        rows.add_row("Answer", Text(shown, style="bold green" if answer.kind == "extractive" else "bold"))
    else:
        rows.add_row("", Text(UNSURE_LEAD, style="bold"))
        rows.add_row("Passage", highlighted_evidence(answer))
        if answer.kind == "extractive":
            rows.add_row("Closest", Text(with_date_meant(answer.text, answer.published)))
    confidence = f"{shown_score(answer.score):.2f}, {BAND_WORDS[answer.confidence]} ({KIND_LABELS[answer.kind]})"
    rows.add_row("Confidence", confidence)
    rows.add_row("Article", escape(answer.title) or "-")
    for line in dated_link(answer.published, answer.url):
        rows.add_row("", Text(line, style="dim"))
    if sure and answer.kind == "extractive":
        rows.add_row("Evidence", highlighted_evidence(answer))
    return rows


def render_more(answer: Answer | None) -> RenderableType:
    """The other answers found for the last question (/more)."""
    if answer is None:
        return Text(NO_QUESTION_FOR_MORE)
    if not answer.alternatives:
        return Text(no_other_answers(answer.question))
    rows = Table.grid(padding=(0, 1))
    rows.add_column(style="dim", justify="right")
    rows.add_column()
    for number, other in enumerate(answer.alternatives, 1):
        shown = with_date_meant(other.text, other.published)
        rows.add_row(f"{number}.", Text(f"{shown} ({shown_score(other.score):.2f})", style="bold"))
        rows.add_row("", Text(other.evidence))
        rows.add_row("", Text(" · ".join(part for part in (other.title, other.published) if part), style="dim"))
    return Group(Text(f"Other answers to “{answer.question}”:", style="bold"), rows)


def render_sources(answer: Answer | None) -> RenderableType:
    """Where the last answer came from: its article and at most two close runners-up from other
    articles (title, date, address); after "I don't know", the articles looked at, in one line."""
    if answer is None:
        return Text(NO_QUESTION_FOR_SOURCES)
    if answer.kind == "reply":
        return Text(OWN_WORDS)
    found = sources_of(answer)
    if found.article is None:
        return Text(looked_at_line(found.looked_at))
    lines = [Text("Article: ", style="dim") + _article_line(found.article)]
    if found.runners_up:
        lines.append(Text("Other articles that came close:", style="dim"))
        lines.extend(Text("  ") + _article_line(article) for article in found.runners_up)
    return Group(*lines)


def _article_line(article: Article) -> Text:
    line = Text(article.title, style="bold")
    for part in dated_link(article.published, article.url):
        line.append(f" · {part}")
    return line


def dated_link(published: str, url: str) -> list[str]:
    """The lines shown under an article's title: its date and its web address, when known."""
    return [line for line in (published, url) if line]


def render_web_report(report: WebReport) -> Text:
    """The summary of a fetch or refresh: new, changed, unchanged, failed, dropped by age."""
    line = (
        f"Fetched: {report.new} new, {report.changed} changed, {report.unchanged} unchanged, "
        f"{len(report.failed)} failed, {report.dropped} dropped by age"
    )
    if report.feeds:
        line += f"; {report.feeds_unchanged} of {plural(report.feeds, 'feed')} unchanged"
    return Text(f"{line} ({report.seconds:.1f} s).")
