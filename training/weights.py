"""A reader's weights on disk: written in fp16 with their tokenizer and hyper-parameters, and read
back as they were trained (a calibrated folder's confidence shift undone)."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def trained_weights(path: Path) -> dict[str, torch.Tensor]:
    """The QA model's weights from an earlier stage: its checkpoint (`last.pt`) or its written folder."""
    if path.is_file():
        return torch.load(path, weights_only=False, map_location="cpu")["model"]
    from safetensors.torch import load_file

    weights = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
    # A calibrated folder carries its confidence bias as a shift of every start logit: undo it,
    # so that training goes on from the weights as they were trained.
    calibration = path / "calibration.json"
    if calibration.is_file():
        shift = json.loads(calibration.read_text(encoding="utf-8")).get("start_logit_shift", 0.0)
        weights["qa_outputs.bias"][0] -= shift
    return weights


def write_model(model, tokenizer, out: Path, setup: dict | None = None) -> None:
    """Weights in fp16 (half the size); the config says float32, so they load as float32 for the CPU.
    `setup` (the hyper-parameters) goes beside them as training.json, for the model card."""
    out.mkdir(parents=True, exist_ok=True)
    if setup is not None:
        (out / "training.json").write_text(json.dumps(setup, indent=2) + "\n", encoding="utf-8")
    model.config.dtype = "float32"
    halved = {k: v.half().cpu().contiguous() for k, v in model.state_dict().items()}
    model.save_pretrained(out, state_dict=halved, safe_serialization=True)
    tokenizer.save_pretrained(out)
