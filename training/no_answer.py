"""The reader's no-answer model, fitted end to end on held-out articles: qabot indexes them, then
reads each held-out question as the bot does, and again with every retrieved passage that holds
the answer taken away (an on-topic question the passages cannot answer, the kind a bot
over news meets most). A logistic regression of the first kind against the second, on the best
span's confidence, the best sentence's score, whether the span lies in that sentence and that
sentence's lead over the next, gives the chance that the passages hold an answer;
the bot abstains when it is under one half (no-answer wins) or the span's confidence is under
`min_reader_score`, which is chosen on the same readings (see `choose_min_score`). Where only the
confidence is too low, the best sentence is the answer when it scores at least
`fallback_sentence_score`, chosen on them too (see `choose_fallback_score`). Questions people
wrote to have no answer (SQuAD 2.0's) are read as they are, as unanswerable readings too.

The same features also give the sure model: a logistic regression of "the answer shown is right"
(F1 >= 0.5) over the readings the bot answers; `sure_threshold` is the lowest chance at which at
most `MAX_SURE_WRONG` of the sure answers are wrong (see `choose_sure_threshold`).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.answering.rules import ReadingModel
from training.data import Paragraph


def fit_logistic(features: np.ndarray, labels: np.ndarray, penalty: float = 0.02) -> tuple[np.ndarray, float]:
    """Weights and bias minimising the log loss of sigmoid(features @ w + b) against `labels`, plus
    `penalty` / 2 * |w|^2, by Newton's method, with Platt's smoothed targets: a small, one-sided or
    separable set cannot diverge (the penalty is nothing beside a thousand readings)."""
    features = np.asarray(features, dtype=np.float64).reshape(len(labels), -1)
    positives = float(labels.sum())
    negatives = float(len(labels) - positives)
    targets = np.where(labels > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    design = np.c_[features, np.ones(len(labels))]
    theta = np.zeros(design.shape[1])
    theta[0] = 1.0
    ridge = np.full(len(theta), float(penalty))
    ridge[-1] = 1e-6  # the bias is (all but) not penalised

    def loss(theta: np.ndarray) -> float:
        z = design @ theta
        return float(np.sum(np.logaddexp(0, z) - targets * z) + 0.5 * np.sum(ridge * theta * theta))

    current = loss(theta)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -60, 60)))
        weight = p * (1 - p) + 1e-9
        gradient = design.T @ (p - targets) + ridge * theta
        hessian = (design * weight[:, None]).T @ design + np.diag(ridge)
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        while size > 1e-6 and loss(theta - size * step) > current:  # halve the step until the loss falls
            size /= 2
        theta = theta - size * step
        current, improvement = loss(theta), np.abs(size * step).max()
        if improvement < 1e-9:
            break
    return theta[:-1], float(theta[-1])


# The share of sure answers allowed to be wrong on the held-out readings.
MAX_SURE_WRONG = 0.08


@dataclass(frozen=True)
class Readings:
    """One row per reading: the span's confidence (0 when no span), the best sentence's score,
    whether the span lies in that sentence, that sentence's lead over the next, whether the passages
    held the answer, whether the span is right (F1 >= 0.5), whether its sentence holds the answer
    (the evidence a user is shown) and whether the best sentence holds it (a sentence answer's);
    between them, the question's coverage by the span's passage and a contradicted year."""

    confidence: np.ndarray
    sentence: np.ndarray
    agreement: np.ndarray
    lead: np.ndarray
    coverage: np.ndarray
    year_conflict: np.ndarray
    answerable: np.ndarray
    right: np.ndarray
    evidence: np.ndarray
    best_evidence: np.ndarray

    def features(self) -> np.ndarray:
        """A `ReadingModel`'s inputs, in the order of its weights: reader, sentence, agreement, margin,
        coverage, year."""
        confidence = np.clip(self.confidence, 1e-6, 1 - 1e-6)
        logit = np.log(confidence / (1 - confidence))
        return np.c_[
            logit,
            self.sentence,
            self.agreement.astype(float),
            self.lead,
            self.coverage,
            self.year_conflict.astype(float),
        ]

    def chances(self, model: ReadingModel) -> np.ndarray:
        """The model's chance for each reading, as the bot computes it (0 where no span)."""
        rows = zip(
            self.confidence, self.sentence, self.agreement, self.lead, self.coverage, self.year_conflict, strict=True
        )
        return np.array([model.chance_of(c, s, bool(a), m, v, bool(y)) if c > 0 else 0.0 for c, s, a, m, v, y in rows])


def _squad_file(paragraphs: list[Paragraph], path: Path) -> Path:
    """The held-out paragraphs as one SQuAD-format file (an article per group)."""
    articles: dict[str, list[dict]] = {}
    for number, paragraph in enumerate(paragraphs):
        articles.setdefault(paragraph.group, []).append(
            {
                "context": paragraph.context,
                "qas": [
                    {
                        "id": f"{number}-{k}",
                        "question": question,
                        "answers": [{"text": text, "answer_start": start} for text, start in answers],
                    }
                    for k, (question, answers) in enumerate(paragraph.questions)
                ],
            }
        )
    data = [{"title": title, "paragraphs": items} for title, items in articles.items()]
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path


def read_end_to_end(paragraphs: list[Paragraph], model: Path, limit: int | None = None) -> Readings:
    """Index `paragraphs` and read each question as the bot does, with and without the passages
    that hold its answer (questions whose every passage holds the answer get the first reading only)."""
    from rich.progress import track

    from bot.evaluation.metrics import evidence_hit, f1_score
    from bot.evaluation.questionsets import load_question_set
    from retrieval.engine import QAEngine
    from retrieval.settings import load_settings

    rows: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="qabot-calibrate-") as work:
        folder = Path(work)
        questions = load_question_set(_squad_file(paragraphs, folder / "held-out.json"))
        settings = load_settings(
            index={"dir": folder / "index"},
            data={"dir": folder / "data"},
            store={"backend": "embedded"},
            models={"reader": str(model.resolve()), "onnx_dir": folder / "onnx", "reader_quantize": False},
            answer={"fitted_no_answer": False},
        )
        engine = QAEngine(settings)
        engine.index_documents(questions.documents)
        pipeline = engine.pipeline
        answerer = pipeline.get_component("answerer")
        pipeline.remove_component("answerer")
        unanswerable = [(question, ()) for p in paragraphs for question, _ in p.unanswerable]
        asked_questions = [(q.question, q.answers) for q in questions.questions[:limit]] + unanswerable[:limit]
        for text, answers in track(asked_questions, description="Reading held-out questions", transient=True):
            result = pipeline.run({"followup": {"question": text, "history": []}}, include_outputs_from={"followup"})
            asked = result["followup"]
            passages = result["ranker"]["documents"]
            without = [d for d in passages if not answers or not evidence_hit("", d.content or "", answers)]
            for documents, answerable in ((passages, bool(answers)), (without, False)):
                if not documents or (not answerable and len(without) == len(passages) and answers):
                    continue
                reading = answerer.read(asked["reader_question"], documents, asked["question"], asked["context"])
                span = reading.span
                right = evidence = best_evidence = False
                if answerable and span is not None:
                    right = f1_score(span.data or "", answers) >= 0.5
                    evidence = evidence_hit(span.data or "", span.meta["evidence"], answers)
                if answerable and reading.best_sentence is not None:
                    document, k = reading.best_sentence
                    sentence, _ = answerer.sentences.sentences_text(document, k, k + 1)
                    best_evidence = evidence_hit("", sentence, answers)
                score = span.score if span else 0.0
                features = (score, reading.sentence_score, reading.in_best_sentence, reading.lead)
                subject = (reading.coverage, reading.year_conflict)
                rows.append((*features, *subject, answerable, right, evidence, best_evidence))
                if not answers:
                    break  # a question written to have no answer: one reading, over all its passages
    columns = list(zip(*rows, strict=True)) if rows else [()] * 10
    return Readings(*(np.array(column) for column in columns))


def _balance(has_answer: float, no_answer: float, answerable_share: float) -> float:
    """What a threshold is chosen for: answering where there is an answer and abstaining where there
    is none, weighed by the share of questions that have one."""
    return answerable_share * has_answer + (1 - answerable_share) * no_answer


def choose_min_score(
    scores: np.ndarray, readings: Readings, answerable_chance: np.ndarray, answerable_share: float = 0.5
) -> tuple[float, dict]:
    """The confidence threshold with the best mean of (answerable questions answered with the answer
    in the sentence shown) and (unanswerable ones abstained on), weighed by `answerable_share` (the
    share of questions the articles answer), the no-answer model deciding as well.
    A span that misses a word or two but shows the right sentence still answers the user; a wrong
    sentence or "I don't know" does not."""
    best, best_value, figures = 0.0, -1.0, {}
    for threshold in np.arange(0.0, 0.96, 0.01):
        answered = (scores >= threshold) & (answerable_chance >= 0.5) & (scores > 0)
        has_answer = float((answered & readings.evidence)[readings.answerable].mean())
        no_answer = float((~answered)[~readings.answerable].mean())
        value = _balance(has_answer, no_answer, answerable_share)
        if value > best_value + 1e-9:
            best, best_value = round(float(threshold), 2), value
            figures = {
                "answerable_evidence": round(has_answer, 3),
                "answerable_right": round(float((answered & readings.right)[readings.answerable].mean()), 3),
                "unanswerable_abstained": round(no_answer, 3),
            }
    return best, figures


def choose_fallback_score(
    readings: Readings, answered: np.ndarray, answerable_chance: np.ndarray, answerable_share: float = 0.5
) -> tuple[float, dict]:
    """The best sentence's score from which a reading that no-answer lets through but whose span's
    confidence is too low (`answered` False, the chance at least one half) is answered with its
    best sentence: the one with the best mean of the same two shares as `choose_min_score`, a
    sentence answer counting as shown evidence when that sentence holds the answer. 1.0 (never)
    unless a lower one does strictly better."""
    candidates = ~answered & (answerable_chance >= 0.5) & (readings.confidence > 0)
    shown = answered & readings.evidence

    def value(threshold: float) -> tuple[float, float, float]:
        fallback = candidates & (readings.sentence >= threshold)
        has_answer = float((shown | (fallback & readings.best_evidence))[readings.answerable].mean())
        no_answer = float((~(answered | fallback))[~readings.answerable].mean())
        return _balance(has_answer, no_answer, answerable_share), has_answer, no_answer

    best, (best_value, has_answer, no_answer) = 1.0, value(1.01)
    for threshold in np.round(np.arange(0.99, 0.0, -0.01), 2):  # from the top: the highest of equally good
        current = value(float(threshold))
        if current[0] > best_value + 1e-9:
            best, (best_value, has_answer, no_answer) = float(threshold), current
    fallbacks = candidates & (readings.sentence >= best) if best < 1.0 else np.zeros_like(candidates)
    return best, {
        "answerable_evidence": round(has_answer, 3),
        "unanswerable_abstained": round(no_answer, 3),
        "sentence_answers": int(fallbacks.sum()),
    }


def fit_no_answer(
    paragraphs: list[Paragraph], model: Path, limit: int | None = None, answerable_share: float | None = None
) -> dict:
    """The no-answer model and `min_reader_score`, fitted on `paragraphs` (held-out articles), with
    the figures that show what they do there. `answerable_share` is the share of questions the
    articles are expected to answer: the fit's bias moves from the readings' own share to it (a
    prior shift), and the thresholds weigh answering and abstaining by it. None: the readings as
    they are, answering and abstaining weighed alike."""
    readings = read_end_to_end(paragraphs, model, limit)
    has_span = readings.confidence > 0
    if readings.answerable.sum() < 2 or (~readings.answerable).sum() < 2:
        raise ValueError("too few held-out questions to fit the no-answer model: hold out more articles")
    weights, bias = fit_logistic(readings.features()[has_span], readings.answerable[has_span])
    if answerable_share is not None:
        bias += _logit(answerable_share) - _logit(float(readings.answerable[has_span].mean()))
    else:
        answerable_share = 0.5
    fitted = reading_model(weights, bias)
    chance = readings.chances(fitted)  # the chance as the bot computes it, with the weights as written
    threshold, figures = choose_min_score(readings.confidence, readings, chance, answerable_share)
    alone, alone_figures = choose_min_score(
        readings.confidence, readings, np.where(has_span, 1.0, 0.0), answerable_share
    )
    answered = (readings.confidence >= threshold) & (chance >= 0.5) & has_span
    fallback, fallback_figures = choose_fallback_score(readings, answered, chance, answerable_share)
    sure_model, sure_threshold, sure_figures = fit_sure(readings, answered)
    return {
        "model": dataclasses.asdict(fitted),
        "min_reader_score": threshold,
        "fallback_sentence_score": fallback,
        "sure_model": dataclasses.asdict(sure_model),
        "sure_threshold": sure_threshold,
        "figures": {
            "sure": sure_figures,
            "questions": int(readings.answerable.sum()),
            "unanswerable_readings": int((~readings.answerable).sum()),
            **figures,
            "confidence_alone": {"min_reader_score": alone, **alone_figures},
            "with_sentence_answers": {"fallback_sentence_score": fallback, **fallback_figures},
        },
    }


def _logit(share: float) -> float:
    share = min(max(share, 1e-3), 1 - 1e-3)
    return float(np.log(share / (1 - share)))


def reading_model(weights: np.ndarray, bias: float) -> ReadingModel:
    """A `ReadingModel` from `fit_logistic`'s weights (in `Readings.features` order), rounded as written."""
    w = [round(float(v), 4) for v in weights]
    return ReadingModel(w[0], w[1], round(bias, 4), *w[2:])


def fit_sure(readings: Readings, answered: np.ndarray) -> tuple[ReadingModel, float, dict]:
    """The sure model, fitted on the readings the bot answers (right: the span's F1 >= 0.5), and its
    threshold (`choose_sure_threshold`)."""
    right = readings.answerable & readings.right
    if answered.sum() < 2:
        raise ValueError("too few answered held-out readings to fit the sure model: hold out more articles")
    weights, bias = fit_logistic(readings.features()[answered], right[answered])
    model = reading_model(weights, bias)
    chance = readings.chances(model)
    threshold, figures = choose_sure_threshold(chance, answered, right, readings.answerable)
    return model, threshold, figures


def choose_sure_threshold(
    chance: np.ndarray, answered: np.ndarray, right: np.ndarray, answerable: np.ndarray
) -> tuple[float, dict]:
    """The lowest threshold (in steps of 0.01) at which at most `MAX_SURE_WRONG` of the sure answers
    are wrong: as many sure answers as that allows. 0.99 when none does."""
    best = 0.99
    for threshold in np.round(np.arange(0.99, 0.0, -0.01), 2):
        sure = answered & (chance >= threshold)
        if sure.sum() and float((~right[sure]).mean()) <= MAX_SURE_WRONG:
            best = float(threshold)
    sure = answered & (chance >= best)
    unsure = answered & ~sure
    return best, {
        "sure_of_answerable": round(float(sure[answerable].mean()), 3),
        "sure_wrong": round(float((~right[sure]).mean()), 3) if sure.any() else 0.0,
        "unsure_right": round(float(right[unsure].mean()), 3) if unsure.any() else 0.0,
    }
