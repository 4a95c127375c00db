"""How the answerer decides: the fitted reading models (no-answer, sure), the confidence band's
defaults, and the rules a reader's calibration and the settings give it."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")


@dataclass(frozen=True)
class ReadingModel:
    """A chance fitted on readings: sigmoid(reader * logit(span confidence) + sentence * best
    sentence's score + agreement * [span in that sentence] + margin * that sentence's lead over the
    next + coverage * share of the question's terms (by rarity) in the span's passage and title +
    year * [the question names a year the span's sentence contradicts] + bias).

    Fitted end to end on held-out articles (`training.calibrate`), twice: as the no-answer model (the
    chance that the passages hold an answer: answerable questions against the same questions with
    the passages holding the answer removed, and questions written to have none) and as the sure
    model (the chance that the answer shown is right). Older fits lack the later weights: 0.
    """

    reader: float
    sentence: float
    bias: float
    agreement: float = 0.0
    margin: float = 0.0
    coverage: float = 0.0
    year: float = 0.0

    def chance(self, reading: Any) -> float:
        """The chance for a `decide.Reading` (0 when it has no span)."""
        if reading.span is None:
            return 0.0
        return self.chance_of(
            reading.span.score,
            reading.sentence_score,
            reading.in_best_sentence,
            reading.lead,
            reading.coverage,
            reading.year_conflict,
        )

    def chance_of(
        self,
        confidence: float,
        sentence_score: float,
        in_best_sentence: bool = False,
        lead: float = 0.0,
        coverage: float = 1.0,
        year_conflict: bool = False,
    ) -> float:
        confidence = min(max(confidence, 1e-6), 1 - 1e-6)
        z = (
            self.reader * math.log(confidence / (1 - confidence))
            + self.sentence * sentence_score
            + self.agreement * float(in_best_sentence)
            + self.margin * lead
            + self.coverage * coverage
            + self.year * float(year_conflict)
            + self.bias
        )
        return 1.0 / (1.0 + math.exp(-min(max(z, -60.0), 60.0)))


# Without a fitted sure model, an answer is sure when its confidence reaches a threshold, the
# question's rarer terms are mostly in its passage, and no year of the question is contradicted.
# These defaults stand in for a reader whose calibration.json gives no thresholds of its own (the
# shipped reader's are chosen on the dev sets by `training.bands`; docs/models-and-training.md).
DEFAULT_SURE_CONFIDENCE = 0.85
DEFAULT_SURE_COVERAGE = 0.6


@dataclass(frozen=True)
class AnswerRules:
    """How the answerer decides, as a reader's calibration.json and the `answer` settings give it:
    `min_score` (the span's confidence under which it does not answer with the span), the
    `no_answer_model`, the sentence `fallback_score`, and the band: a fitted `sure_model` with its
    `sure_threshold`, else fixed `sure_confidence` and `sure_coverage`. `bands_given` says whether
    the calibration set the band at all (else the defaults stand in)."""

    min_score: float = 0.5
    no_answer_model: ReadingModel | None = None
    fallback_score: float | None = None
    sure_model: ReadingModel | None = None
    sure_threshold: float = 0.5
    sure_confidence: float = DEFAULT_SURE_CONFIDENCE
    sure_coverage: float = DEFAULT_SURE_COVERAGE
    bands_given: bool = False

    @classmethod
    def of(cls, calibration: dict[str, Any], answer_settings: Any) -> AnswerRules:
        """The rules from `reader_calibration`'s dict; a setting that is set wins over the calibration."""
        minimum, fallback = answer_settings.min_reader_score, answer_settings.fallback_sentence_score
        fitted = calibration.get("no_answer_model") if answer_settings.fitted_no_answer else None
        sure = calibration.get("sure_model")
        return cls(
            min_score=float(minimum if minimum is not None else calibration.get("min_reader_score", 0.5)),
            no_answer_model=ReadingModel(*fitted) if fitted else None,
            fallback_score=fallback if fallback is not None else calibration.get("fallback_sentence_score"),
            sure_model=ReadingModel(*sure) if sure else None,
            sure_threshold=calibration.get("sure_threshold", 0.5),
            sure_confidence=calibration.get("sure_confidence", DEFAULT_SURE_CONFIDENCE),
            sure_coverage=calibration.get("sure_coverage", DEFAULT_SURE_COVERAGE),
            bands_given=bool(sure) or "sure_confidence" in calibration,
        )

    def answerer_options(self) -> dict[str, Any]:
        """The `ExtractiveAnswerer` keyword arguments these rules set."""
        options = dataclasses.asdict(self)
        options.pop("bands_given")
        options["no_answer_model"], options["sure_model"] = self.no_answer_model, self.sure_model
        return options


def year_conflict(question: str, sentence: str) -> bool:
    """Whether the question names a year and the sentence names years, none of them the question's
    ("What did ASML earn in 2024?" against "In 2025 ASML earned ...")."""
    asked = set(_YEAR.findall(question))
    said = set(_YEAR.findall(sentence))
    return bool(asked and said and not asked & said)
