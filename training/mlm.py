"""A masked-language-model pass over the training contexts, before the QA stage:
`python -m training.mlm --data DIR --out DIR`, then `training.train_reader --base DIR`.

all-MiniLM-L6-v2 was tuned for whole-sentence embeddings, not for reading word by word; a short
pass of masked-word prediction over the very paragraphs the reader trains on (never a dev set, nor
the articles held out for calibration) may give its token vectors back some of that reading.

The encoder has no masked-word head: a fresh one (its output tied to the frozen word embeddings,
as in BERT) learns at `--head-lr`, the encoder at `--lr`. Only masked positions are scored.
Resumable like `training.train_reader`; the encoder alone is written to `--out`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from training import runs
from training.data import read_squad_folder, split_held_out

DEFAULT_CHECKPOINTS = Path("~/.cache/qabot/reader-mlm").expanduser()
MIN_PIECE_TOKENS = 16


def pieces_of(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Each text's token ids cut into pieces of at most `max_length` with [CLS] and [SEP]; short
    tails (under 16 tokens) are dropped."""
    width = max_length - 2
    out = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        for start in range(0, len(ids), width):
            piece = ids[start : start + width]
            if len(piece) >= MIN_PIECE_TOKENS:
                out.append([tokenizer.cls_token_id, *piece, tokenizer.sep_token_id])
    return out


def masked_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the masked positions only (the head never sees the others)."""
    hidden = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    chosen = batch["labels"] != -100
    logits = model.cls(hidden[chosen])
    return F.cross_entropy(logits, batch["labels"][chosen])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of SQuAD-format training files")
    parser.add_argument("--base", default="sentence-transformers/all-MiniLM-L6-v2", help="encoder to start from")
    parser.add_argument("--out", type=Path, required=True, help="where the adapted encoder is written")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_CHECKPOINTS, help="checkpoint and log folder")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5, help="the encoder's learning rate")
    parser.add_argument("--head-lr", type=float, default=1e-3, help="the new masked-word head's learning rate")
    parser.add_argument("--max-length", type=int, default=192, help="tokens per piece of context")
    parser.add_argument("--mask", type=float, default=0.15, help="share of tokens masked")
    runs.add_run_arguments(parser, save_every=100)
    return parser.parse_args(argv)


def _setup(args: argparse.Namespace, pieces: int) -> dict:
    keys = ("base", "epochs", "batch_size", "lr", "head_lr", "warmup", "max_length", "mask", "held_out", "seed")
    return {"stage": "mlm", **{k: getattr(args, k) for k in (*keys, "limit")}, "pieces": pieces}


def _batch(collator, pieces: list[list[int]], indices: list[int], device: torch.device) -> dict[str, torch.Tensor]:
    return runs.on_device(collator([{"input_ids": pieces[i]} for i in indices]), device)


def held_out_loss(model, collator, pieces: list[list[int]], batch_size: int) -> float:
    """Mean masked-word loss over the held-out articles' pieces (the same masks each time)."""
    model.eval()
    state = torch.get_rng_state()
    torch.manual_seed(0)
    losses = []
    with torch.no_grad():
        for start in range(0, len(pieces), batch_size):
            indices = list(range(start, min(start + batch_size, len(pieces))))
            losses.append(masked_loss(model, _batch(collator, pieces, indices, model.device)).item())
    torch.set_rng_state(state)
    model.train()
    return round(sum(losses) / len(losses), 4) if losses else None


def train(args: argparse.Namespace) -> Path:
    from transformers import AutoTokenizer, BertForMaskedLM, DataCollatorForLanguageModeling

    from retrieval.models.resolve import resolve_model

    torch.set_num_threads(args.threads)
    args.checkpoints.mkdir(parents=True, exist_ok=True)
    log_path = args.checkpoints / "train-log.jsonl"

    def log(record: dict) -> None:
        runs.log_record(log_path, record)

    resolved = resolve_model(args.base)
    if resolved.path is None:
        raise SystemExit(f"base model {args.base} is not on this machine")
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))
    torch.manual_seed(args.seed)
    model = BertForMaskedLM.from_pretrained(str(resolved.path), dtype=torch.float32)
    model.bert.embeddings.word_embeddings.requires_grad_(False)  # and so the tied output weights
    device = runs.pick_device(args.device)
    model.to(device)

    paragraphs = read_squad_folder(args.data)
    if args.limit:
        paragraphs = paragraphs[: args.limit]
    kept, held = split_held_out(paragraphs, args.held_out, args.seed)
    pieces = pieces_of(tokenizer, sorted({p.context for p in kept}), args.max_length)
    held_pieces = pieces_of(tokenizer, sorted({p.context for p in held}), args.max_length)[:256]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=args.mask, return_tensors="pt")

    per_epoch = math.ceil(len(pieces) / args.batch_size)
    total_steps = max(1, math.ceil(per_epoch * args.epochs))
    head = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("cls.")]
    encoder = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("cls.")]
    optimizer = torch.optim.AdamW(
        [{"params": encoder, "lr": args.lr}, {"params": head, "lr": args.head_lr}], weight_decay=0.01
    )
    scheduler = runs.linear_schedule(optimizer, total_steps, args.warmup)
    setup = _setup(args, len(pieces))
    checkpoint, step = args.checkpoints / "last.pt", 0
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False, map_location=device)
        if state["setup"] == setup:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            step = state["step"]
            log({"event": "resumed", "step": step})
        else:
            log({"event": "checkpoint of another setup ignored", "path": str(checkpoint)})
    log({"event": "start", "setup": setup, "steps": total_steps, "step": step})
    if step == 0:
        log({"step": 0, "held_out_loss": held_out_loss(model, collator, held_pieces, args.batch_size)})

    model.train()
    parameters = encoder + head
    started, seen, running = time.time(), 0, 0.0
    stop = min(total_steps, args.max_steps or total_steps)
    while step < stop:
        epoch, position = divmod(step, per_epoch)
        order = list(range(len(pieces)))
        random.Random(args.seed + epoch).shuffle(order)
        for first in range(position * args.batch_size, len(order), args.batch_size):
            if step >= stop:
                break
            torch.manual_seed(args.seed * 100_003 + step)  # the same masks after a resume
            loss = masked_loss(model, _batch(collator, pieces, order[first : first + args.batch_size], device))
            runs.update(loss, optimizer, scheduler, parameters)
            step += 1
            seen += args.batch_size
            running = 0.98 * running + 0.02 * loss.item() if running else loss.item()
            if step % 10 == 0 or step == stop:
                rate = round(seen / (time.time() - started), 2)
                log({"step": step, "of": total_steps, "loss": round(running, 4), "pieces_per_s": rate})
            if step % args.save_every == 0 or step == stop:
                runs.save_checkpoint(checkpoint, model, optimizer, scheduler, step, setup)
    if step >= total_steps:
        held_out = held_out_loss(model, collator, held_pieces, args.batch_size)
        log({"step": step, "held_out_loss": held_out})
        args.out.mkdir(parents=True, exist_ok=True)
        model.bert.to("cpu").save_pretrained(args.out)
        tokenizer.save_pretrained(args.out)
        (args.out / "training.json").write_text(json.dumps(setup, indent=2) + "\n", encoding="utf-8")
        log({"event": "written", "out": str(args.out), "step": step})
    return args.out


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
