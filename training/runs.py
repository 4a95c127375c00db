"""What every training run here shares: the run's command-line settings, a linear schedule with
warm-up, the JSON-lines log and the checkpoint written atomically."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch


def add_run_arguments(parser: argparse.ArgumentParser, save_every: int) -> None:
    """Warm-up, held-out share, seed, slice, early stop, checkpoint interval and threads."""
    parser.add_argument("--warmup", type=float, default=0.06, help="share of steps with a rising learning rate")
    parser.add_argument("--held-out", type=float, default=0.04, help="share of articles kept out for calibration")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit", type=int, help="use only the first N paragraphs (a smoke test)")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (the schedule is unchanged)")
    parser.add_argument("--save-every", type=int, default=save_every)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, or auto: a GPU where one is at hand (the same model is written)"
    )


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def on_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in batch.items()}


def linear_schedule(optimizer, total_steps: int, warmup_share: float):
    """The rate rises over the first `warmup_share` of the steps, then falls to zero at the last."""
    warmup = max(1, int(total_steps * warmup_share))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup)))
    )


def update(loss: torch.Tensor, optimizer, scheduler, parameters: list) -> None:
    """One optimiser step on `loss`, its gradients clipped to norm 1, and one step of the schedule."""
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    scheduler.step()


def log_record(log_path: Path, record: dict) -> None:
    print(json.dumps(record), flush=True)
    with log_path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def save_checkpoint(path: Path, model, optimizer, scheduler, step: int, setup: dict) -> None:
    tmp = path.with_suffix(".tmp")
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "setup": setup,
    }
    torch.save(state, tmp)
    os.replace(tmp, path)
