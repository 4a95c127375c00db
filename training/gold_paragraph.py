"""The reader's figures with the gold paragraph given: the best span of each (question, paragraph),
scored by SQuAD's EM and F1. `python -m training.gold_paragraph --model DIR --dev FILE...` prints
them for a written model on development sets (never trained on).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def span_logits(start: torch.Tensor, end: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """(batch, start token, end token) logits of every span inside the context, as Haystack scores them;
    -1e4 elsewhere."""
    pairs = start.unsqueeze(-1) + end.unsqueeze(-2)
    allowed = context.unsqueeze(-1) & context.unsqueeze(-2)
    allowed &= torch.ones_like(allowed[0]).triu().unsqueeze(0)
    return pairs.masked_fill(~allowed, -1e4)


@torch.no_grad()
def best_spans(model, tokenizer, pairs: list[tuple[str, str]], max_length: int = 384, batch_size: int = 32):
    """For each (question, context): the best span's text and its logit (start + end), read as
    Haystack's reader reads (context truncated to `max_length` tokens)."""
    model.eval()
    results = []
    for begin in range(0, len(pairs), batch_size):
        chunk = pairs[begin : begin + batch_size]
        enc = tokenizer(
            [q for q, _ in chunk],
            [c for _, c in chunk],
            truncation="only_second",
            max_length=max_length,
            padding=True,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        context = torch.tensor([[sid == 1 for sid in enc.sequence_ids(i)] for i in range(len(chunk))], dtype=torch.bool)
        device = next(model.parameters()).device
        output = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device))
        context = context.to(device)
        spans = span_logits(output.start_logits, output.end_logits, context)
        width = spans.shape[-1]
        values, flat = spans.flatten(1).max(dim=-1)
        for i, (value, index) in enumerate(zip(values.tolist(), flat.tolist(), strict=True)):
            start, end = divmod(index, width)
            offsets = enc["offset_mapping"][i]
            text = chunk[i][1][int(offsets[start][0]) : int(offsets[end][1])]
            results.append((text, value))
    model.train()
    return results


def evaluate_squad(model, tokenizer, items: list[tuple[str, str, tuple[str, ...]]]) -> dict[str, float]:
    """EM and F1 (SQuAD normalisation) of the best span, with the gold paragraph given."""
    from bot.evaluation.metrics import exact_match, f1_score

    spans = best_spans(model, tokenizer, [(q, c) for q, c, _ in items])
    em = [exact_match(text, golds) for (text, _), (_, _, golds) in zip(spans, items, strict=True)]
    f1 = [f1_score(text, golds) for (text, _), (_, _, golds) in zip(spans, items, strict=True)]
    return {"em": sum(em) / len(em), "f1": sum(f1) / len(f1), "questions": len(items)}


def read_dev(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """(question, paragraph, answers) of a SQuAD v1.1 file: the dev set, only ever for figures."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [
        (qa["question"], paragraph["context"], tuple(a["text"] for a in qa["answers"]))
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a written reader folder")
    parser.add_argument("--dev", type=Path, nargs="+", required=True, help="SQuAD-format development files")
    args = parser.parse_args(argv)
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    model = AutoModelForQuestionAnswering.from_pretrained(str(args.model), dtype=torch.float32)
    for dev in args.dev:
        print(json.dumps({"dev": dev.name, **evaluate_squad(model, tokenizer, read_dev(dev))}), flush=True)


if __name__ == "__main__":
    main()
