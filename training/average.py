"""Average the weights of readers fine-tuned from the same base (a "model soup"): one model, read
at the cost of one, that often reads better than each of its parts.

`python -m training.average --model A --model B [--weight 0.5 --weight 0.5] --out DIR`, then
`python -m training.calibrate --model DIR ...` (the average is not calibrated: each part's
confidence shift is undone before averaging)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from training.weights import trained_weights, write_model


def average_weights(parts: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """The weighted mean of state dicts with the same keys and shapes (weights are normalised)."""
    if not parts or len(parts) != len(weights):
        raise ValueError("one weight for each model")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("weights must be non-negative and not all zero")
    keys = set(parts[0])
    for part in parts[1:]:
        if set(part) != keys or any(part[k].shape != parts[0][k].shape for k in keys):
            raise ValueError("the models differ in shape: average only readers of the same base")
    total = sum(weights)
    return {k: sum(w / total * part[k].float() for w, part in zip(weights, parts, strict=True)) for k in parts[0]}


def average(models: list[Path], weights: list[float], out: Path) -> Path:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    averaged = average_weights([trained_weights(m) for m in models], weights)
    model = AutoModelForQuestionAnswering.from_pretrained(str(models[0]), dtype=torch.float32)
    model.load_state_dict(averaged)
    tokenizer = AutoTokenizer.from_pretrained(str(models[0]))
    setup = {"average_of": [m.name for m in models], "weights": weights}
    first = models[0] / "training.json"
    if first.is_file():  # the first part's hyper-parameters, for the model card
        setup = {**json.loads(first.read_text(encoding="utf-8")), **setup}
    write_model(model, tokenizer, out, setup)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", required=True, help="a reader folder (two or more)")
    parser.add_argument("--weight", type=float, action="append", help="each model's weight, in order (default equal)")
    parser.add_argument("--out", type=Path, required=True, help="where the averaged reader is written")
    args = parser.parse_args(argv)
    if len(args.model) < 2:
        parser.error("give two or more --model folders")
    weights = args.weight or [1.0] * len(args.model)
    try:
        print(average(args.model, weights, args.out))
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
