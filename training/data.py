"""Training examples for the reader: short windows of sentences around each answer, plus made-up
unanswerable ones (SQuAD 2.0 style), so that the reader learns to abstain.

The windows match what qabot reads at question time: a few whole sentences around the best one,
not a whole article. Sentences come from the same splitter the index uses.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from retrieval.ingest.splitter import split_sentences
from training.tempting import TemptingWindows

Answers = tuple[tuple[str, int], ...]  # ((answer, start), ...)


@dataclass(frozen=True)
class Paragraph:
    """One context with its questions; `group` is the article (or review, post, paper) it came from.
    `unanswerable` holds the questions people wrote to have no answer in it (SQuAD 2.0's
    `is_impossible`), each with its plausible answers: the text a careless reader would pick."""

    source: str  # file stem
    group: str
    context: str
    questions: tuple[tuple[str, Answers], ...]
    unanswerable: tuple[tuple[str, Answers], ...] = ()


@dataclass(frozen=True)
class Example:
    """A question and a window of text; `answer_start`/`answer_end` are None when the window holds no answer."""

    question: str
    context: str
    answer_start: int | None
    answer_end: int | None
    kind: str  # "answer", "no-answer: same paragraph" / "same article" / "other article" / "tempting" / "real question"
    answers: tuple[str, ...] = ()
    source: str = ""  # the file stem of the question, for per-source weights


def _answers(items: list[dict]) -> Answers:
    return tuple((a["text"], int(a["answer_start"])) for a in items if a.get("text"))


# An "article" of more paragraphs than this is a collection (all Reddit posts, all TyDi passages, SQuAD
# paragraphs of unknown articles): each of its paragraphs is an article of its own.
COLLECTION = 300


def read_squad_file(path: Path) -> list[Paragraph]:
    """Paragraphs of one SQuAD-format file; unanswerable questions apart from the answered ones."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    groups = [f"{path.stem}/{article.get('title') or number}" for number, article in enumerate(data)]
    sizes: dict[str, int] = {}
    for group, article in zip(groups, data, strict=True):
        sizes[group] = sizes.get(group, 0) + len(article["paragraphs"])
    paragraphs = []
    for number, (group, article) in enumerate(zip(groups, data, strict=True)):
        collection = sizes[group] > COLLECTION
        for k, paragraph in enumerate(article["paragraphs"]):
            questions, unanswerable = [], []
            for qa in paragraph["qas"]:
                question = qa["question"].strip()
                if qa.get("is_impossible"):
                    unanswerable.append((question, _answers(qa.get("plausible_answers", []))))
                elif answers := _answers(qa.get("answers", [])):
                    questions.append((question, answers))
            if questions or unanswerable:
                paragraphs.append(
                    Paragraph(
                        path.stem,
                        f"{group}/{number}.{k}" if collection else group,
                        paragraph["context"],
                        tuple(questions),
                        tuple(unanswerable),
                    )
                )
    return paragraphs


def is_dev_file(path: Path) -> bool:
    """Development sets (`*-dev.json`) sit beside the training files but are never trained on."""
    return path.stem.endswith("-dev")


def read_squad_folder(folder: Path) -> list[Paragraph]:
    files = [path for path in sorted(folder.glob("*.json")) if not is_dev_file(path)]
    if not files:
        raise FileNotFoundError(f"no SQuAD-format .json training files in {folder}")
    return [paragraph for path in files for paragraph in read_squad_file(path)]


def questions_by_source(paragraphs: list[Paragraph]) -> dict[str, int]:
    """How many questions (answerable and unanswerable) each file gives, for the model card."""
    counts: dict[str, int] = {}
    for paragraph in paragraphs:
        counts[paragraph.source] = (
            counts.get(paragraph.source, 0) + len(paragraph.questions) + len(paragraph.unanswerable)
        )
    return dict(sorted(counts.items()))


def split_held_out(paragraphs: list[Paragraph], share: float, seed: int) -> tuple[list[Paragraph], list[Paragraph]]:
    """Hold out whole articles (never single questions), so that held-out figures are fair: `share`
    of each file's articles (one at least, where a file has two or more), and one of the articles
    with real unanswerable questions, so that the no-answer fit sees some."""
    rng = random.Random(seed)
    by_source: dict[str, set[str]] = {}
    for paragraph in paragraphs:
        by_source.setdefault(paragraph.source, set()).add(paragraph.group)
    held: set[str] = set()
    for source in sorted(by_source):
        groups = sorted(by_source[source])
        if len(groups) > 1:
            held.update(rng.sample(groups, max(1, round(len(groups) * share))))
    with_unanswerable = sorted({p.group for p in paragraphs if p.unanswerable})
    if len(with_unanswerable) > 1 and not held & set(with_unanswerable):
        held.add(rng.choice(with_unanswerable))
    return [p for p in paragraphs if p.group not in held], [p for p in paragraphs if p.group in held]


class _SentenceText:
    """A context with runs of white space made single, split into sentences with their spans."""

    def __init__(self, context: str) -> None:
        # to_new[i]: where character i of `context` lands in `text` (a space run lands on its one space)
        self.to_new: list[int] = []
        out: list[str] = []
        for char in context:
            if char.isspace():
                if not (out and out[-1] == " "):
                    out.append(" ")
            else:
                out.append(char)
            self.to_new.append(len(out) - 1)
        self.text = "".join(out)
        self.spans: list[tuple[int, int]] = []
        cursor = 0
        for sentence in split_sentences(self.text):
            start = self.text.find(sentence, cursor)
            if start < 0:
                continue
            self.spans.append((start, start + len(sentence)))
            cursor = start + len(sentence)

    def sentence_of(self, offset: int) -> int | None:
        for number, (start, end) in enumerate(self.spans):
            if start <= offset < end + 1:
                return number
        return None

    def window(self, first: int, last: int) -> tuple[str, int]:
        """Text of sentences first..last (inclusive) and its offset in `text`."""
        start, end = self.spans[first][0], self.spans[last][1]
        return self.text[start:end], start


def _answer_in(window: str, answers: Iterable[str]) -> bool:
    lowered = window.lower()
    return any(a.strip().lower() in lowered for a in answers if a.strip())


def _echoes_answer(window: str, answers: Iterable[str]) -> bool:
    """Whether the window holds half or more of an answer's longer words: another part of the same
    article may give the answer in other words (a review repeating another), so it is no negative."""
    present = set(re.findall(r"\w+", window.lower()))
    for answer in answers:
        words = {w for w in re.findall(r"\w+", answer.lower()) if len(w) > 3}
        if words and len(words & present) * 2 >= len(words):
            return True
    return False


def make_examples(
    paragraphs: list[Paragraph],
    seed: int,
    before: int = 2,
    after: int = 3,
    same_paragraph_negatives: float = 0.3,
    other_article_negatives: float = 0.15,
    same_article_negatives: float = 0.0,
    tempting_negatives: float = 0.0,
) -> list[Example]:
    """For each question: its answer in a window of 0..`before` sentences before and 0..`after` after
    the answer's sentence; with the given probabilities also the same window without the answer's
    sentence (on topic, no answer), a window from another paragraph of the same article (the same
    subject and names, as the passages retrieval brings for a question the article does not answer)
    a window from another article (off topic, no answer), and (`tempting_negatives`) a window from
    another article that shares the question's rare terms and holds something of the answer's type."""
    rng = random.Random(seed)
    examples: list[Example] = []
    texts = [_SentenceText(p.context) for p in paragraphs]
    by_group: dict[str, list[int]] = {}
    for number, paragraph in enumerate(paragraphs):
        if texts[number].spans:
            by_group.setdefault(paragraph.group, []).append(number)
    tempting = None
    if tempting_negatives > 0:
        sentences = [[t.window(i, i)[0] for i in range(len(t.spans))] for t in texts]
        tempting = TemptingWindows(sentences, [p.group for p in paragraphs])
    for number, (paragraph, text) in enumerate(zip(paragraphs, texts, strict=True)):
        if not text.spans:
            continue
        for question, answers in paragraph.questions:
            answer, start = answers[0]
            start += len(answer) - len(answer.lstrip())
            answer = answer.strip()
            if not answer.strip() or start + len(answer) > len(paragraph.context):
                continue
            new_start = text.to_new[start]
            new_end = text.to_new[start + len(answer) - 1] + 1
            first = text.sentence_of(new_start)
            last = text.sentence_of(max(new_start, new_end - 1))
            if first is None or last is None:
                continue
            lo = max(0, first - rng.randint(0, before))
            hi = min(len(text.spans) - 1, last + rng.randint(0, after))
            window, offset = text.window(lo, hi)
            golds = tuple(a for a, _ in answers)
            a_start, a_end = new_start - offset, new_end - offset
            if text.text[new_start:new_end].strip() and 0 <= a_start < a_end <= len(window):
                examples.append(Example(question, window, a_start, a_end, "answer", golds, paragraph.source))
            if rng.random() < same_paragraph_negatives:
                around = [i for i in range(lo, hi + 1) if i < first or i > last]
                if not around:  # widen: the sentences next to the answer's
                    around = [i for i in (first - 1, last + 1) if 0 <= i < len(text.spans)]
                chosen = " ".join(text.window(i, i)[0] for i in around)
                if chosen and not _answer_in(chosen, golds):
                    examples.append(
                        Example(question, chosen, None, None, "no-answer: same paragraph", golds, paragraph.source)
                    )
            siblings = [i for i in by_group.get(paragraph.group, ()) if i != number]
            # (no draw when off, so that the other windows are the same as without this kind)
            if same_article_negatives > 0 and siblings and rng.random() < same_article_negatives:
                chosen = _random_window(texts[rng.choice(siblings)], rng, before + after)
                if not _answer_in(chosen, golds) and not _echoes_answer(chosen, golds):
                    examples.append(
                        Example(question, chosen, None, None, "no-answer: same article", golds, paragraph.source)
                    )
            if tempting is not None and rng.random() < tempting_negatives:
                chosen = tempting.window_for(question, golds, paragraph.group, rng)  # another article: no echo test
                if chosen:
                    examples.append(
                        Example(question, chosen, None, None, "no-answer: tempting", golds, paragraph.source)
                    )
            if rng.random() < other_article_negatives:
                for _ in range(5):
                    other = rng.randrange(len(paragraphs))
                    if paragraphs[other].group != paragraph.group and texts[other].spans:
                        break
                else:
                    continue
                chosen = _random_window(texts[other], rng, before + after)
                if not _answer_in(chosen, golds):
                    examples.append(
                        Example(question, chosen, None, None, "no-answer: other article", golds, paragraph.source)
                    )
        examples.extend(_real_unanswerable(paragraph, text, rng, before, after))
    return examples


def _real_unanswerable(
    paragraph: Paragraph, text: _SentenceText, rng: random.Random, before: int, after: int
) -> Iterator[Example]:
    """A question written to have no answer, against the window around its plausible answer (the
    sentence a careless reader would take the answer from), or a random window when it has none."""
    for question, plausible in paragraph.unanswerable:
        first = None
        if plausible:
            _, start = plausible[0]
            if 0 <= start < len(paragraph.context):
                first = text.sentence_of(text.to_new[start])
        if first is None:
            window = _random_window(text, rng, before + after)
        else:
            lo = max(0, first - rng.randint(0, before))
            window = text.window(lo, min(len(text.spans) - 1, first + rng.randint(0, after)))[0]
        yield Example(question, window, None, None, "no-answer: real question", (), paragraph.source)


def _random_window(text: _SentenceText, rng: random.Random, most: int) -> str:
    """1 to `most` + 1 consecutive sentences from a random place in `text`."""
    lo = rng.randrange(len(text.spans))
    hi = min(len(text.spans) - 1, lo + rng.randint(0, most))
    return text.window(lo, hi)[0]


def weighted_order(examples: list[Example], weights: dict[str, float], seed: int) -> list[int]:
    """One epoch's example indices with each source weighted: a weight of 0.5 takes a different half
    of that source's examples each epoch (seeded), 2.0 takes them twice; unnamed sources weigh 1.
    The length is the same every epoch, so a resumed run finds its place."""
    rng = random.Random(seed)
    by_source: dict[str, list[int]] = {}
    for number, example in enumerate(examples):
        by_source.setdefault(example.source, []).append(number)
    order: list[int] = []
    for source in sorted(by_source):
        members = by_source[source]
        weight = weights.get(source, 1.0)
        whole, part = divmod(weight, 1.0)
        order.extend(members * int(whole))
        order.extend(rng.sample(members, round(len(members) * part)))
    return order


def batches(order: list[int], lengths: list[int], batch_size: int, seed: int) -> Iterator[list[int]]:
    """Batches of similar length (less padding), in an order fixed by `seed`."""
    rng = random.Random(seed)
    shuffled = order[:]
    rng.shuffle(shuffled)
    chunk = batch_size * 50
    result: list[list[int]] = []
    for begin in range(0, len(shuffled), chunk):
        block = sorted(shuffled[begin : begin + chunk], key=lambda i: lengths[i])
        result.extend(block[i : i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(result)
    yield from result
