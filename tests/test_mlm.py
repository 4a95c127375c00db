"""The masked-language-model pass before the QA stage (`training.mlm`), on a tiny slice with the
real base encoder: pieces of context, a checkpoint that resumes, held-out articles kept out, and
an encoder the QA stage can start from."""

from __future__ import annotations

import json

import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from retrieval.models.resolve import resolve_model
from tests.test_training import _tiny_squad
from training import mlm

BASE = resolve_model("sentence-transformers/all-MiniLM-L6-v2").path


def test_contexts_are_cut_into_pieces_within_the_length_and_short_tails_dropped():
    tokenizer = AutoTokenizer.from_pretrained(str(BASE))
    text = " ".join(f"word{n}" for n in range(200))
    pieces = mlm.pieces_of(tokenizer, [text, "Too short."], 64)
    assert pieces and all(len(p) <= 64 for p in pieces)
    assert all(p[0] == tokenizer.cls_token_id and p[-1] == tokenizer.sep_token_id for p in pieces)
    assert all(len(p) - 2 >= mlm.MIN_PIECE_TOKENS for p in pieces)  # "Too short." and short tails are not kept
    whole = tokenizer(text, add_special_tokens=False)["input_ids"]
    kept = [token for p in pieces for token in p[1:-1]]
    assert kept == whole[: len(kept)] and len(whole) - len(kept) < mlm.MIN_PIECE_TOKENS


def test_the_pass_resumes_keeps_held_out_articles_out_and_writes_an_encoder_for_the_qa_stage(tmp_path):
    data = _tiny_squad(tmp_path / "data")
    out, checkpoints = tmp_path / "encoder", tmp_path / "checkpoints"
    common = ["--data", str(data), "--out", str(out), "--checkpoints", str(checkpoints), "--max-length", "32"]
    common += ["--batch-size", "2", "--held-out", "0.34", "--save-every", "1", "--threads", "1", "--epochs", "1"]
    mlm.main([*common, "--max-steps", "1"])
    assert not out.exists()
    mlm.main(common)
    log = [json.loads(line) for line in (checkpoints / "train-log.jsonl").read_text().splitlines()]
    assert {"event": "resumed", "step": 1} in log
    start = next(r for r in log if r.get("event") == "start")
    losses = [r["held_out_loss"] for r in log if "held_out_loss" in r]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    # four of the six paragraphs are trained on (one article of two is held out), one piece each
    assert start["setup"]["pieces"] == 4 and start["steps"] == 2

    qa = AutoModelForQuestionAnswering.from_pretrained(str(out), dtype=torch.float32)
    base = AutoModelForQuestionAnswering.from_pretrained(str(BASE), dtype=torch.float32)
    words = "embeddings.word_embeddings.weight"
    top = "encoder.layer.5.output.dense.weight"
    assert torch.equal(qa.base_model.state_dict()[words], base.base_model.state_dict()[words])  # kept frozen
    assert not torch.equal(qa.base_model.state_dict()[top], base.base_model.state_dict()[top])
    assert json.loads((out / "training.json").read_text())["stage"] == "mlm"
