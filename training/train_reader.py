"""Train qabot's extractive reader from open QA data: `python -m training.train_reader --data DIR`.

Fine-tunes the shipped all-MiniLM-L6-v2 encoder for span extraction on short windows of sentences
(see `training.data`), with made-up unanswerable windows so that it learns to abstain. Runs on a
CPU in the background: it logs to stdout and `train-log.jsonl`, saves a checkpoint every
`--save-every` steps and resumes from it, and at the end writes the model (fp16 safetensors and
its tokenizer) to `--out`. A later stage starts from an earlier stage's weights (`--init`), on its
own schedule and checkpoint folder. `training.calibrate` then fits its confidence and writes the
model card.

Inputs match Haystack's TransformersExtractiveReader: question then context, no token type ids,
a span's score sigmoid(start + end logit), so the training loss includes that score directly.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from training.data import (
    Example,
    batches,
    make_examples,
    questions_by_source,
    read_squad_folder,
    split_held_out,
    weighted_order,
)
from training.gold_paragraph import evaluate_squad, read_dev, span_logits
from training.runs import (
    add_run_arguments,
    linear_schedule,
    log_record,
    on_device,
    pick_device,
    save_checkpoint,
    update,
)
from training.weights import trained_weights, write_model

DEFAULT_CHECKPOINTS = Path("~/.cache/qabot/reader-training").expanduser()


@dataclass
class Encoded:
    input_ids: list[list[int]]
    context_masks: list[list[bool]]
    starts: list[int]
    ends: list[int]


def encode(tokenizer, examples: list[Example], max_length: int) -> tuple[Encoded, list[Example]]:
    """Token ids and the answer's first and last token (0, 0 for no answer); examples whose answer
    was cut off by `max_length` are dropped."""
    encodings = tokenizer(
        [e.question for e in examples],
        [e.context for e in examples],
        truncation="only_second",
        max_length=max_length,
        return_offsets_mapping=True,
    )
    kept, out = [], Encoded([], [], [], [])
    for number, example in enumerate(examples):
        sequence_ids = encodings.sequence_ids(number)
        offsets = encodings["offset_mapping"][number]
        context = [sid == 1 for sid in sequence_ids]
        start = end = 0
        if example.answer_start is not None:
            tokens = [i for i, inside in enumerate(context) if inside]
            first = [i for i in tokens if offsets[i][0] <= example.answer_start < offsets[i][1]]
            last = [i for i in tokens if offsets[i][0] < example.answer_end <= offsets[i][1]]
            if not first or not last or last[0] < first[0]:
                continue
            start, end = first[0], last[0]
        kept.append(example)
        out.input_ids.append(encodings["input_ids"][number])
        out.context_masks.append(context)
        out.starts.append(start)
        out.ends.append(end)
    return out, kept


def collate(encoded: Encoded, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(encoded.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(indices), width), dtype=torch.long)
    context = torch.zeros((len(indices), width), dtype=torch.bool)
    for row, i in enumerate(indices):
        n = len(encoded.input_ids[i])
        ids[row, :n] = torch.tensor(encoded.input_ids[i])
        attention[row, :n] = 1
        context[row, :n] = torch.tensor(encoded.context_masks[i])
    return {
        "input_ids": ids,
        "attention_mask": attention,
        "context": context,
        "starts": torch.tensor([encoded.starts[i] for i in indices]),
        "ends": torch.tensor([encoded.ends[i] for i in indices]),
    }


def loss_of(model, batch: dict[str, torch.Tensor], hard_negatives: int = 8) -> torch.Tensor:
    """Token cross-entropy (no answer = the [CLS] token, as in SQuAD 2.0) plus a binary loss on the
    span score Haystack uses: the gold span up, the best-scoring wrong spans down."""
    output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    starts, ends = batch["starts"], batch["ends"]
    token_loss = (F.cross_entropy(output.start_logits, starts) + F.cross_entropy(output.end_logits, ends)) / 2
    spans = span_logits(output.start_logits, output.end_logits, batch["context"])
    answerable = starts > 0
    rows = torch.arange(len(starts), device=starts.device)
    gold = spans[rows, starts, ends]
    wrong = spans.clone()
    wrong[rows[answerable], starts[answerable], ends[answerable]] = -1e4
    negatives = wrong.flatten(1).topk(hard_negatives, dim=-1).values
    negatives = negatives[negatives > -1e3]
    span_loss = F.binary_cross_entropy_with_logits(negatives, torch.zeros_like(negatives), reduction="sum")
    if answerable.any():
        positives = gold[answerable]
        span_loss = span_loss + F.binary_cross_entropy_with_logits(
            positives, torch.ones_like(positives), reduction="sum"
        )
    return token_loss + span_loss / len(starts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of SQuAD-format training files")
    parser.add_argument("--dev", type=Path, help="SQuAD v1.1 dev file for the logged EM/F1 (never trained on)")
    parser.add_argument("--base", default="sentence-transformers/all-MiniLM-L6-v2", help="encoder to start from")
    parser.add_argument(
        "--init",
        type=Path,
        help="start from the QA weights of an earlier stage (its checkpoint file or model folder), on a fresh schedule",
    )
    parser.add_argument(
        "--same-article-negatives",
        type=float,
        default=0.0,
        help="share of questions that also get an unanswerable window from another paragraph of their article",
    )
    parser.add_argument(
        "--tempting-negatives",
        type=float,
        default=0.0,
        help="share of questions that also get a window of another article sharing their rare terms and an answer type",
    )
    parser.add_argument(
        "--sources",
        nargs="+",
        help="train only on these files of --data (their stems); the held-out articles are still chosen over all files",
    )
    parser.add_argument(
        "--source-weight",
        nargs="+",
        default=[],
        metavar="STEM=WEIGHT",
        help="weigh a file's examples each epoch: 0.5 takes a different half each epoch, 2 takes them twice",
    )
    parser.add_argument(
        "--layer-decay",
        type=float,
        default=1.0,
        help="layer-wise learning-rate decay: each encoder layer below the top learns this much slower",
    )
    parser.add_argument("--out", type=Path, default=Path("models/qabot-reader"), help="where the model is written")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_CHECKPOINTS, help="checkpoint and log folder")
    parser.add_argument(
        "--epochs", type=float, default=1.0, help="may change between runs: resumes on the new schedule"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=192, help="tokens per training window")
    parser.add_argument("--freeze-layers", type=int, default=2, help="lowest encoder layers kept frozen")
    add_run_arguments(parser, save_every=50)
    parser.add_argument(
        "--order-seed",
        type=int,
        help="seed of the QA head's start, the made-up negatives and the order of examples (default: --seed, which "
        "alone picks the held-out articles: runs that differ here share them, and can be averaged and calibrated)",
    )
    parser.add_argument("--eval-every", type=int, default=300)
    parser.add_argument("--dev-sample", type=int, default=200, help="dev questions for the periodic figures")
    args = parser.parse_args(argv)
    args.order = args.seed if args.order_seed is None else args.order_seed
    try:
        args.source_weights = {k: float(v) for k, v in (item.split("=", 1) for item in args.source_weight)}
    except ValueError:
        parser.error("--source-weight takes STEM=WEIGHT, e.g. squadshifts-reddit=0.5")
    return args


def build_model(base: str, seed: int, freeze_layers: int):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from retrieval.models.resolve import resolve_model

    resolved = resolve_model(base)
    if resolved.path is None:
        raise SystemExit(f"base model {base} is not on this machine")
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path))
    model = AutoModelForQuestionAnswering.from_pretrained(str(resolved.path), dtype=torch.float32)
    encoder = model.base_model
    encoder.embeddings.word_embeddings.requires_grad_(False)  # most of the weights; they barely move
    if freeze_layers > 0:
        encoder.embeddings.requires_grad_(False)
        for layer in encoder.encoder.layer[:freeze_layers]:
            layer.requires_grad_(False)
    return model, tokenizer


def parameter_groups(model, lr: float, layer_decay: float) -> list[dict]:
    """Trainable weights grouped by depth: the QA head at `lr`, encoder layer i of n at
    lr * layer_decay ** (n - i), the embeddings one step below the lowest layer. Lower layers hold
    the general reading the encoder brings, so they move least."""
    layers = model.base_model.encoder.layer
    depth_of: dict[int, int] = {}
    for number, layer in enumerate(layers):
        for parameter in layer.parameters():
            depth_of[id(parameter)] = len(layers) - number
    for parameter in model.base_model.embeddings.parameters():
        depth_of[id(parameter)] = len(layers) + 1
    groups: dict[int, list] = {}
    for parameter in model.parameters():
        if parameter.requires_grad:
            groups.setdefault(depth_of.get(id(parameter), 0), []).append(parameter)
    return [{"params": params, "lr": lr * layer_decay**depth} for depth, params in sorted(groups.items())]


def train(args: argparse.Namespace) -> Path:
    torch.set_num_threads(args.threads)
    random.seed(args.order)
    args.checkpoints.mkdir(parents=True, exist_ok=True)
    log_path = args.checkpoints / "train-log.jsonl"

    paragraphs = read_squad_folder(args.data)
    if args.limit:
        paragraphs = paragraphs[: args.limit]
    train_paragraphs, _ = split_held_out(paragraphs, args.held_out, args.seed)
    if args.sources:
        missing = set(args.sources) - {p.source for p in paragraphs}
        if missing:
            raise SystemExit(f"--sources: no file {', '.join(sorted(missing))} in {args.data}")
        train_paragraphs = [p for p in train_paragraphs if p.source in args.sources]
    model, tokenizer = build_model(args.base, args.order, args.freeze_layers)
    if args.init:
        model.load_state_dict(trained_weights(args.init))
    device = pick_device(args.device)
    model.to(device)
    examples = make_examples(
        train_paragraphs,
        args.order,
        same_article_negatives=args.same_article_negatives,
        tempting_negatives=args.tempting_negatives,
    )
    encoded, examples = encode(tokenizer, examples, args.max_length)
    lengths = [len(ids) for ids in encoded.input_ids]
    per_epoch = math.ceil(len(weighted_order(examples, args.source_weights, args.order)) / args.batch_size)
    total_steps = max(1, math.ceil(per_epoch * args.epochs))
    dev = read_dev(args.dev) if args.dev else []
    dev_sample = random.Random(args.seed).sample(dev, min(args.dev_sample, len(dev))) if dev else []

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameter_groups(model, args.lr, args.layer_decay), lr=args.lr, weight_decay=0.01)
    scheduler = linear_schedule(optimizer, total_steps, args.warmup)
    checkpoint = args.checkpoints / "last.pt"
    step = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False, map_location=device)
        setup = _setup(args, len(examples))
        same_but_epochs = {**state["setup"], "epochs": args.epochs} == setup
        if same_but_epochs:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            step = state["step"]
            if state["setup"]["epochs"] == args.epochs:
                scheduler.load_state_dict(state["scheduler"])
                log_record(log_path, {"event": "resumed", "step": step})
            else:  # a longer or shorter run: the new schedule, from where training stands
                for _ in range(step):
                    scheduler.step()
                log_record(
                    log_path,
                    {
                        "event": "rescheduled",
                        "step": step,
                        "epochs": args.epochs,
                        "from_epochs": state["setup"]["epochs"],
                    },
                )
        else:
            log_record(log_path, {"event": "checkpoint of another setup ignored", "path": str(checkpoint)})
    log_record(
        log_path,
        {
            "event": "start",
            "setup": _setup(args, len(examples)),
            "examples": len(examples),
            "no_answer_share": round(sum(e.answer_start is None for e in examples) / len(examples), 3),
            "steps": total_steps,
            "step": step,
            "trainable_parameters": sum(p.numel() for p in parameters),
            "files": questions_by_source(train_paragraphs),
        },
    )

    model.train()
    started, seen, running = time.time(), 0, 0.0
    stop = min(total_steps, args.max_steps or total_steps)
    while step < stop:
        epoch, position = divmod(step, per_epoch)
        epoch_examples = weighted_order(examples, args.source_weights, args.order + epoch)
        order = list(batches(epoch_examples, lengths, args.batch_size, args.order + epoch))
        for indices in order[position:]:
            if step >= stop:
                break
            loss = loss_of(model, on_device(collate(encoded, indices, tokenizer.pad_token_id), device))
            update(loss, optimizer, scheduler, parameters)
            step += 1
            seen += len(indices)
            running = 0.98 * running + 0.02 * loss.item() if running else loss.item()
            if step % 10 == 0 or step == stop:
                rate = seen / (time.time() - started)
                log_record(
                    log_path,
                    {
                        "step": step,
                        "of": total_steps,
                        "loss": round(running, 4),
                        "lr": scheduler.get_last_lr()[0],
                        "examples_per_s": round(rate, 2),
                    },
                )
            if step % args.save_every == 0 or step == stop:
                save_checkpoint(checkpoint, model, optimizer, scheduler, step, _setup(args, len(examples)))
            if dev_sample and (step % args.eval_every == 0 or step == stop):
                try:
                    figures = evaluate_squad(model, tokenizer, dev_sample)
                except ImportError as exc:  # the figures are for the log; training goes on without them
                    figures = {"error": str(exc)}
                log_record(log_path, {"step": step, "dev_sample": figures})
    if step >= total_steps:
        write_model(model, tokenizer, args.out, _setup(args, len(examples)))
        log_record(log_path, {"event": "written", "out": str(args.out), "step": step})
    return args.out


def _setup(args: argparse.Namespace, examples: int) -> dict:
    keys = ("base", "epochs", "batch_size", "lr", "warmup", "max_length", "freeze_layers", "held_out", "seed", "limit")
    setup = {k: getattr(args, k) for k in keys}
    # only when used, so that checkpoints written before these settings existed still resume
    if args.init:
        setup["init"] = args.init.name  # the file or folder name (the setup is shipped beside the model)
    if args.same_article_negatives:
        setup["same_article_negatives"] = args.same_article_negatives
    if args.tempting_negatives:
        setup["tempting_negatives"] = args.tempting_negatives
    if args.sources:
        setup["sources"] = sorted(args.sources)
    if args.source_weights:
        setup["source_weights"] = dict(sorted(args.source_weights.items()))
    if args.layer_decay != 1.0:
        setup["layer_decay"] = args.layer_decay
    if args.order != args.seed:
        setup["order_seed"] = args.order
    return {**setup, "examples": examples}


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
