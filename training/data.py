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

from retrieval.splitter import split_sentences


@dataclass(frozen=True)
class Paragraph:
    """One context with its questions; `group` is the article (or review, post, paper) it came from."""

    source: str  # file stem
    group: str
    context: str
    questions: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]  # (question, ((answer, start), ...))


@dataclass(frozen=True)
class Example:
    """A question and a window of text; `answer_start`/`answer_end` are None when the window holds no answer."""

    question: str
    context: str
    answer_start: int | None
    answer_end: int | None
    kind: str  # "answer", "no-answer: same paragraph", "no-answer: same article", "no-answer: other article"
    answers: tuple[str, ...] = ()


def read_squad_file(path: Path) -> list[Paragraph]:
    """Paragraphs of one SQuAD-format file; questions without an answer are skipped."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs = []
    for number, article in enumerate(data):
        group = f"{path.stem}/{article.get('title') or number}"
        for paragraph in article["paragraphs"]:
            questions = []
            for qa in paragraph["qas"]:
                answers = tuple((a["text"], int(a["answer_start"])) for a in qa.get("answers", []) if a.get("text"))
                if answers and not qa.get("is_impossible"):
                    questions.append((qa["question"].strip(), answers))
            if questions:
                paragraphs.append(Paragraph(path.stem, group, paragraph["context"], tuple(questions)))
    return paragraphs


def read_squad_folder(folder: Path) -> list[Paragraph]:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no SQuAD-format .json files in {folder}")
    return [paragraph for path in files for paragraph in read_squad_file(path)]


def split_held_out(paragraphs: list[Paragraph], share: float, seed: int) -> tuple[list[Paragraph], list[Paragraph]]:
    """Hold out whole articles (never single questions), so that held-out figures are fair."""
    groups = sorted({p.group for p in paragraphs})
    rng = random.Random(seed)
    held = set(rng.sample(groups, max(1, round(len(groups) * share))))
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
) -> list[Example]:
    """For each question: its answer in a window of 0..`before` sentences before and 0..`after` after
    the answer's sentence; with the given probabilities also the same window without the answer's
    sentence (on topic, no answer), a window from another paragraph of the same article (the same
    subject and names, as the passages retrieval brings for a question the article does not answer)
    and a window from another article (off topic, no answer)."""
    rng = random.Random(seed)
    examples: list[Example] = []
    texts = [_SentenceText(p.context) for p in paragraphs]
    by_group: dict[str, list[int]] = {}
    for number, paragraph in enumerate(paragraphs):
        if texts[number].spans:
            by_group.setdefault(paragraph.group, []).append(number)
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
                examples.append(Example(question, window, a_start, a_end, "answer", golds))
            if rng.random() < same_paragraph_negatives:
                around = [i for i in range(lo, hi + 1) if i < first or i > last]
                if not around:  # widen: the sentences next to the answer's
                    around = [i for i in (first - 1, last + 1) if 0 <= i < len(text.spans)]
                chosen = " ".join(text.window(i, i)[0] for i in around)
                if chosen and not _answer_in(chosen, golds):
                    examples.append(Example(question, chosen, None, None, "no-answer: same paragraph", golds))
            siblings = [i for i in by_group.get(paragraph.group, ()) if i != number]
            # (no draw when off, so that the other windows are the same as without this kind)
            if same_article_negatives > 0 and siblings and rng.random() < same_article_negatives:
                chosen = _random_window(texts[rng.choice(siblings)], rng, before + after)
                if not _answer_in(chosen, golds) and not _echoes_answer(chosen, golds):
                    examples.append(Example(question, chosen, None, None, "no-answer: same article", golds))
            if rng.random() < other_article_negatives:
                for _ in range(5):
                    other = rng.randrange(len(paragraphs))
                    if paragraphs[other].group != paragraph.group and texts[other].spans:
                        break
                else:
                    continue
                chosen = _random_window(texts[other], rng, before + after)
                if not _answer_in(chosen, golds):
                    examples.append(Example(question, chosen, None, None, "no-answer: other article", golds))
    return examples


def _random_window(text: _SentenceText, rng: random.Random, most: int) -> str:
    """1 to `most` + 1 consecutive sentences from a random place in `text`."""
    lo = rng.randrange(len(text.spans))
    hi = min(len(text.spans) - 1, lo + rng.randint(0, most))
    return text.window(lo, hi)[0]


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
