"""Haystack's extractive reading with the model in ONNX Runtime: the same answers, without torch.

`TransformersExtractiveReader` imports torch and transformers, about 5 s on 2 cores before the
first question, and runs the model in torch. This component reads exactly as it does (the same
tokenisation of question and document, spans scored sigmoid(calibration_factor * (start + end
logit)) over the document's tokens, overlapping answers dropped, the no-answer score the product
of (1 - score) over the answers kept, Haystack `ExtractedAnswer`s), but runs an ONNX export of
the model (made once, on first use, with torch) through ONNX Runtime: start-up in a fraction of
a second. `tests/test_reader.py` checks that both give the same answers.

With `distinct=True` the candidates of a sequence are its best spans that overlap no better one
(the best span, then the best span beside it, and so on), which is Haystack's reading with every
span of the sequence a candidate rather than its top `answers_per_seq`: the best answer is the
same, and the next ones are other answers rather than the best one's neighbours, which the
overlap check would drop (`answers_per_seq=200` finds them too, at several milliseconds more).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, component
from haystack.dataclasses import ExtractedAnswer

from retrieval.models.onnx import load_onnx


@component
class OnnxExtractiveReader:
    """Finds answer spans in documents with a question-answering model run by ONNX Runtime."""

    def __init__(
        self,
        model_path: Path,
        cache_dir: Path,
        calibration_factor: float = 0.1,
        top_k: int = 20,
        max_seq_length: int = 384,
        stride: int = 128,
        answers_per_seq: int = 20,
        overlap_threshold: float | None = 0.01,
        threads: int = 0,
        quantize: bool = False,
        distinct: bool = False,
    ) -> None:
        self.model_path = Path(model_path)
        self.cache_dir = Path(cache_dir)
        self.calibration_factor = calibration_factor
        self.top_k = top_k
        self.max_seq_length = max_seq_length
        self.stride = stride
        self.answers_per_seq = answers_per_seq
        self.overlap_threshold = overlap_threshold
        self.threads = threads
        self.quantize = quantize
        self.distinct = distinct
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
            tokenizer.no_padding()
            tokenizer.enable_truncation(self.max_seq_length, stride=self.stride, strategy="only_second")
            self._session = load_onnx(
                self.model_path, self.cache_dir, self.quantize, task="question-answering", threads=self.threads
            )
            self._tokenizer = tokenizer

    def _encode(self, query: str, documents: list[Document]) -> tuple[list[Any], list[int]]:
        """Each document's token sequences (long ones split with overlap), and the document of each."""
        sequences, owners = [], []
        for number, document in enumerate(documents):
            encoding = self._tokenizer.encode(query, document.content or "")
            for part in [encoding, *encoding.overflowing]:
                sequences.append(part)
                owners.append(number)
        return sequences, owners

    def _logits(self, sequences: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        width = max(len(s.ids) for s in sequences)
        ids = np.zeros((len(sequences), width), dtype=np.int64)
        attention = np.zeros_like(ids)
        context = np.zeros(ids.shape, dtype=bool)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence.ids)] = sequence.ids
            attention[row, : len(sequence.ids)] = 1
            context[row, : len(sequence.ids)] = [sid == 1 for sid in sequence.sequence_ids]
        start, end = self._session.run(None, {"input_ids": ids, "attention_mask": attention})
        return start, end, context

    def _candidates(self, start: np.ndarray, end: np.ndarray, context: np.ndarray, answers_per_seq: int):
        """(start token, end token, score) of the best spans of one sequence, as Haystack scores them."""
        start = np.where(context, start, -np.inf)
        end = np.where(context, end, -np.inf)
        logits = start[:, None] + end[None, :]
        logits = np.where(np.triu(np.ones_like(logits, dtype=bool)), logits, -np.inf)
        with np.errstate(over="ignore"):
            scores = 1.0 / (1.0 + np.exp(-logits * self.calibration_factor))
        if self.distinct:
            return self._distinct_candidates(scores, answers_per_seq)
        flat = scores.ravel()
        count = min(answers_per_seq, flat.size)
        best = np.argpartition(-flat, count - 1)[:count]
        best = best[np.argsort(-flat[best], kind="stable")]
        width = logits.shape[1]
        return [(int(i // width), int(i % width), float(flat[i])) for i in best if flat[i] > 0]

    @staticmethod
    def _distinct_candidates(scores: np.ndarray, count: int) -> list[tuple[int, int, float]]:
        """Up to `count` spans, best first, each overlapping none before it: after a span (s, e), the
        spans starting at or before e and ending at or after s are out."""
        found = []
        for _ in range(count):
            index = int(np.argmax(scores))
            first, last = divmod(index, scores.shape[1])
            score = float(scores[first, last])
            if score <= 0:
                break
            found.append((first, last, score))
            scores[: last + 1, first:] = 0.0
        return found

    @staticmethod
    def _overlaps(a: ExtractedAnswer, b: ExtractedAnswer, threshold: float) -> bool:
        """As Haystack's `deduplicate_by_overlap`: spans of one document sharing more than `threshold`."""
        if a.document is None or b.document is None or a.document.id != b.document.id:
            return False
        if a.document_offset is None or b.document_offset is None:
            return False
        (s1, e1), (s2, e2) = (
            (a.document_offset.start, a.document_offset.end),
            (b.document_offset.start, b.document_offset.end),
        )
        if not (s1 <= e2 and s2 <= e1):
            return False
        shared = min(e1 - s1, e1 - s2, e2 - s1, e2 - s2)
        return shared > 0 and (shared / max(e1 - s1, 1) > threshold or shared / max(e2 - s2, 1) > threshold)

    @component.output_types(answers=list[ExtractedAnswer])
    def run(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        no_answer: bool = True,
        answers_per_seq: int | None = None,
    ) -> dict[str, list[ExtractedAnswer]]:
        """Answers sorted by score; with `no_answer`, one more answer with no text whose score is
        the chance that none of the others is right."""
        self.warm_up()
        documents = [d for d in documents if d.content]
        if not documents:
            return {"answers": []}
        sequences, owners = self._encode(query, documents)
        start, end, context = self._logits(sequences)
        per_sequence = answers_per_seq or self.answers_per_seq
        if self.distinct:  # no more than are kept: distinct spans are rarely dropped as overlaps
            per_sequence = min(per_sequence, top_k or self.top_k)
        answers = []
        for row, (sequence, owner) in enumerate(zip(sequences, owners, strict=True)):
            document = documents[owner]
            for first, last, score in self._candidates(start[row], end[row], context[row], per_sequence):
                begin, finish = sequence.offsets[first][0], sequence.offsets[last][1]
                answers.append(
                    ExtractedAnswer(
                        query=query,
                        data=(document.content or "")[begin:finish],
                        document=document,
                        score=score,
                        document_offset=ExtractedAnswer.Span(begin, finish),
                        meta={},
                    )
                )
        answers.sort(key=lambda a: a.score, reverse=True)
        if self.overlap_threshold is not None and answers:
            kept: list[ExtractedAnswer] = []
            for answer in answers:
                if not any(self._overlaps(answer, other, self.overlap_threshold) for other in kept):
                    kept.append(answer)
            answers = kept
        answers = answers[: top_k or self.top_k]
        if no_answer:
            none = ExtractedAnswer(
                query=query, data=None, document=None, meta={}, score=math.prod(1 - a.score for a in answers)
            )
            answers = sorted([*answers, none], key=lambda a: a.score, reverse=True)
        return {"answers": answers}
