"""The reader's training script, end to end on a tiny slice: data, windows, no-answer examples,
two real optimiser steps on the real base encoder, a checkpoint that resumes, the written model,
its calibration and its model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from retrieval.models.resolve import READING_MODEL_WEIGHTS
from training import calibrate, train_reader
from training.data import make_examples, read_squad_folder, split_held_out
from training.weights import trained_weights

FACTS = [
    ("Ada Lovelace", "London", "1815", "mathematician"),
    ("Alan Turing", "Maida Vale", "1912", "logician"),
    ("Grace Hopper", "New York", "1906", "computer scientist"),
    ("Emmy Noether", "Erlangen", "1882", "algebraist"),
    ("Carl Gauss", "Brunswick", "1777", "astronomer"),
    ("Marie Curie", "Warsaw", "1867", "physicist"),
]


def _tiny_squad(folder: Path) -> Path:
    """Six paragraphs of three sentences, four questions each and one written to have no answer (SQuAD
    2.0's `is_impossible`, with a plausible answer), in SQuAD format: three articles of two paragraphs
    (two people) each. A development file lies beside it."""
    data = []
    for number, (name, town, year, job) in enumerate(FACTS):
        context = (
            f"{name} was born in {town} in {year}. Later in life {name.split()[0]} worked as a {job}. "
            f"The family moved away from {town} when {name.split()[0]} was young."
        )
        questions = [
            (f"Where was {name} born?", town),
            (f"When was {name} born?", year),
            (f"What did {name.split()[0]} work as?", job),
            (f"Who was born in {town}?", name),
        ]
        qas = [
            {"id": f"{name}-{i}", "question": q, "answers": [{"text": a, "answer_start": context.index(a)}]}
            for i, (q, a) in enumerate(questions)
        ]
        qas.append(
            {
                "id": f"{name}-impossible",
                "question": f"Where did {name} die?",
                "answers": [],
                "is_impossible": True,
                "plausible_answers": [{"text": town, "answer_start": context.index(town)}],
            }
        )
        if number % 2 == 0:
            data.append({"title": f"article {number // 2}", "paragraphs": []})
        data[-1]["paragraphs"].append({"context": context, "qas": qas})
    folder.mkdir()
    path = folder / "tiny.json"
    path.write_text(json.dumps({"version": "tiny", "data": data}), encoding="utf-8")
    dev = [
        {
            "title": "dev",
            "paragraphs": [
                {
                    "context": "Dev only.",
                    "qas": [{"id": "d", "question": "Dev?", "answers": [{"text": "Dev", "answer_start": 0}]}],
                }
            ],
        }
    ]
    (folder / "tiny-dev.json").write_text(json.dumps({"version": "tiny", "data": dev}), encoding="utf-8")
    return folder


def test_examples_hold_their_answers_and_no_answer_windows_do_not(tmp_path):
    paragraphs = read_squad_folder(_tiny_squad(tmp_path / "data"))
    examples = make_examples(
        paragraphs, seed=1, same_paragraph_negatives=1.0, other_article_negatives=1.0, same_article_negatives=1.0
    )
    answered = [e for e in examples if e.answer_start is not None]
    unanswerable = [e for e in examples if e.answer_start is None]
    assert len(answered) == 24
    assert {e.kind for e in unanswerable} == {
        "no-answer: same paragraph",
        "no-answer: same article",
        "no-answer: other article",
        "no-answer: real question",
    }
    for example in answered:
        assert example.context[example.answer_start : example.answer_end] == example.answers[0]
    for example in unanswerable:
        if example.kind != "no-answer: real question":
            assert example.answers[0].lower() not in example.context.lower()
    # a window from elsewhere in the article: the other person of the same article
    contexts = {p.context: p.group for p in paragraphs}
    group_of = {q: p.group for p in paragraphs for q, _ in p.questions}
    for example in (e for e in unanswerable if e.kind == "no-answer: same article"):
        (home,) = {g for c, g in contexts.items() if example.context in c}
        assert home == group_of[example.question]


def test_real_unanswerable_questions_are_read_against_the_window_of_their_plausible_answer(tmp_path):
    paragraphs = read_squad_folder(_tiny_squad(tmp_path / "data"))
    real = [e for e in make_examples(paragraphs, seed=2) if e.kind == "no-answer: real question"]
    assert len(real) == len(FACTS)
    for example, (name, town, _, _) in zip(real, FACTS, strict=True):
        assert example.question == f"Where did {name} die?"
        assert town in example.context and example.answer_start is None
        assert example.source == "tiny"


def test_development_files_beside_the_training_data_are_never_read_for_training(tmp_path):
    paragraphs = read_squad_folder(_tiny_squad(tmp_path / "data"))
    assert {p.source for p in paragraphs} == {"tiny"}
    assert not [p for p in paragraphs if "Dev only." in p.context]


def test_source_weights_take_a_different_share_each_epoch_and_the_same_number(tmp_path):
    from training.data import Example, weighted_order

    examples = [Example("q", "c", None, None, "answer", (), source) for source in ["wiki"] * 4 + ["reviews"] * 10]
    weights = {"wiki": 2.0, "reviews": 0.5}
    first, second = weighted_order(examples, weights, 1), weighted_order(examples, weights, 2)
    assert len(first) == len(second) == 8 + 5
    assert sorted(i for i in first if i < 4) == [0, 0, 1, 1, 2, 2, 3, 3]
    reviews = [{i for i in order if i >= 4} for order in (first, second)]
    assert all(len(chosen) == 5 for chosen in reviews) and reviews[0] != reviews[1]
    assert sorted(weighted_order(examples, {}, 1)) == list(range(14))


def test_layer_wise_decay_gives_lower_layers_smaller_steps():
    from transformers import BertConfig, BertForQuestionAnswering

    model = BertForQuestionAnswering(
        BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=3, num_attention_heads=2, intermediate_size=16)
    )
    groups = train_reader.parameter_groups(model, lr=1.0, layer_decay=0.5)
    rates = [group["lr"] for group in groups]
    assert rates == [1.0, 0.5, 0.25, 0.125, 0.0625]  # head, layers 3..1, embeddings
    top = {id(p) for p in model.base_model.encoder.layer[-1].parameters()}
    assert {id(p) for p in groups[1]["params"]} == top


def test_same_article_windows_are_off_by_default_and_leave_the_other_windows_alone(tmp_path):
    paragraphs = read_squad_folder(_tiny_squad(tmp_path / "data"))
    without = make_examples(paragraphs, seed=4)
    assert not [e for e in without if e.kind == "no-answer: same article"]
    assert make_examples(paragraphs, seed=4, same_article_negatives=0.0) == without


def test_a_window_repeating_the_answer_in_other_words_is_not_made_unanswerable(tmp_path):
    from training.data import _echoes_answer

    assert _echoes_answer("The stand is sturdy and the shelves are strong.", ["shelves are sturdy"])
    assert not _echoes_answer("The colour is a nice blue.", ["shelves are sturdy"])


def test_the_order_seed_changes_the_negatives_and_order_but_not_the_held_out_articles(tmp_path):
    data = _tiny_squad(tmp_path / "data")
    checkpoints = tmp_path / "checkpoints"
    common = ["--data", str(data), "--out", str(tmp_path / "reader"), "--checkpoints", str(checkpoints)]
    common += ["--held-out", "0.34", "--threads", "1", "--same-article-negatives", "1", "--max-steps", "1"]
    plain = train_reader.parse_args(common)
    assert plain.order == 13 and "order_seed" not in train_reader._setup(plain, 0)
    train_reader.main([*common, "--order-seed", "29"])
    start = next(r for r in map(json.loads, (checkpoints / "train-log.jsonl").read_text().splitlines()) if "setup" in r)
    assert start["setup"]["order_seed"] == 29 and start["setup"]["seed"] == 13
    trained, _ = split_held_out(read_squad_folder(data), 0.34, 13)  # as with --seed 13 alone
    windows = {seed: [e.context for e in make_examples(trained, seed, same_article_negatives=1)] for seed in (13, 29)}
    assert start["examples"] == len(windows[29]) and sorted(windows[13]) != sorted(windows[29])


def test_held_out_articles_are_never_trained_on(tmp_path):
    paragraphs = read_squad_folder(_tiny_squad(tmp_path / "data"))
    train, held = split_held_out(paragraphs, share=0.34, seed=3)
    assert held and train
    assert not {p.group for p in train} & {p.group for p in held}


@pytest.mark.slow
def test_training_runs_end_to_end_on_a_tiny_slice_and_resumes(tmp_path):
    data = _tiny_squad(tmp_path / "data")
    out, checkpoints = tmp_path / "reader", tmp_path / "checkpoints"
    common = [
        "--data",
        str(data),
        "--out",
        str(out),
        "--checkpoints",
        str(checkpoints),
        "--batch-size",
        "16",
        "--held-out",
        "0.34",
        "--save-every",
        "1",
        "--threads",
        "1",
        "--epochs",
        "1",
    ]
    train_reader.main([*common, "--max-steps", "1"])
    assert not out.exists()  # stopped early: only a checkpoint
    log = [json.loads(line) for line in (checkpoints / "train-log.jsonl").read_text().splitlines()]
    assert any(r.get("step") == 1 and "loss" in r for r in log)
    train_reader.main(common)  # resumes at step 1 and finishes the schedule
    log = [json.loads(line) for line in (checkpoints / "train-log.jsonl").read_text().splitlines()]
    assert {"event": "resumed", "step": 1} in log
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertForQuestionAnswering"]

    # a second stage: from the first stage's checkpoint, with windows from elsewhere in the article
    stage2 = tmp_path / "stage2"
    train_reader.main(
        [
            *common[: common.index("--checkpoints")],
            "--checkpoints",
            str(stage2),
            *common[common.index("--checkpoints") + 2 :],
            "--init",
            str(checkpoints / "last.pt"),
            "--same-article-negatives",
            "1.0",
            "--max-steps",
            "1",
        ]
    )
    start = next(
        r for r in (json.loads(x) for x in (stage2 / "train-log.jsonl").read_text().splitlines()) if "setup" in r
    )
    assert start["setup"]["init"] == "last.pt" and start["step"] == 0
    assert start["no_answer_share"] > 0.4

    experiment = {"change": "more negatives", "xquad": "0.5 / 0.6", "tydi": "0.4 / 0.5", "kept": "yes"}
    (out / "experiments.json").write_text(json.dumps([experiment]), encoding="utf-8")
    calibrate.main(
        [
            "--data",
            str(data),
            "--model",
            str(out),
            "--held-out",
            "0.34",
            "--dev",
            str(data / "tiny-dev.json"),
            str(data / "tiny-dev.json"),
            "--log",
            str(checkpoints / "train-log.jsonl"),
            "--log",
            str(stage2 / "train-log.jsonl"),
        ]
    )
    figures = json.loads((out / "calibration.json").read_text())
    assert 0.01 <= figures["calibration_factor"] <= 3.0
    assert 0.0 <= figures["min_reader_score"] < 1.0
    assert figures["held_out"]["windows"] > 0
    assert set(figures["no_answer_model"]) == set(READING_MODEL_WEIGHTS)
    assert set(figures["sure_model"]) == set(READING_MODEL_WEIGHTS) and 0.0 < figures["sure_threshold"] < 1.0
    end_to_end = figures["held_out_end_to_end"]
    assert end_to_end["questions"] == 8 and end_to_end["unanswerable_readings"] > 0
    assert 0.0 <= figures["fallback_sentence_score"] <= 1.0
    assert end_to_end["with_sentence_answers"]["fallback_sentence_score"] == figures["fallback_sentence_score"]
    card = (out / "README.md").read_text()
    first_start = next(r for r in log if r.get("event") == "start")
    assert first_start["files"] == {"tiny": 20}  # two of three articles' questions; the dev file never read
    assert "| tiny (`tiny`) | 20 | see the file's source | - |" in card
    assert "| setting | stage 1 | stage 2 |" in card and "| same_article_negatives | - | 1.0 |" in card
    assert str(figures["calibration_factor"]) in card
    assert (out / "reliability.png").stat().st_size > 1000
    assert "When qabot says" in card and str(figures["no_answer_model"]["sentence"]) in card
    assert f"reaches {figures['sure_threshold']}" in card  # the fitted band
    assert "| more negatives | 0.5 / 0.6 | 0.4 / 0.5 | yes |" in card
    assert figures["dev_gold_paragraph"]["questions"] == 1 and "| tiny-dev.json (1 questions), gold paragraph" in card

    # refitting only the no-answer model keeps the confidence fit and the weights
    weights = (out / "model.safetensors").read_bytes()
    gone = str(tmp_path / "no-such-log.jsonl")  # the logs are not where the refit runs: the card keeps the stages
    calibrate.main(["--data", str(data), "--model", str(out), "--held-out", "0.34", "--no-answer-only", "--log", gone])
    again = json.loads((out / "calibration.json").read_text())
    assert "| same_article_negatives | - | 1.0 |" in (out / "README.md").read_text()
    assert (out / "model.safetensors").read_bytes() == weights
    assert (again["calibration_factor"], again["reliability"]) == (
        figures["calibration_factor"],
        figures["reliability"],
    )
    # the same held-out readings; on this tiny slice the fitted weights move a little between fits
    assert again["no_answer_model"] == pytest.approx(figures["no_answer_model"], abs=0.1)
    assert all(abs(v) < 100 for v in again["no_answer_model"].values())

    # a refit that expects most questions answerable moves the bias up; fixed band thresholds replace the sure model
    refit = ["--data", str(data), "--model", str(out), "--held-out", "0.34", "--no-answer-only", "--log", gone]
    calibrate.main([*refit, "--answerable-share", "0.9", "--sure-confidence", "0.8", "--sure-coverage", "0.5"])
    shifted = json.loads((out / "calibration.json").read_text())
    assert shifted["answerable_share"] == 0.9 and shifted["no_answer_model"]["bias"] > again["no_answer_model"]["bias"]
    assert (shifted["sure_confidence"], shifted["sure_coverage"]) == (0.8, 0.5) and "sure_model" not in shifted
    assert "reaches 0.8" in (out / "README.md").read_text() and "assumes 90%" in (out / "README.md").read_text()
    with pytest.raises(SystemExit):
        calibrate.parse_args([*refit, "--answerable-share", "1.0"])


def test_a_stage_can_train_on_some_files_while_the_held_out_articles_stay_out(tmp_path):
    data = _tiny_squad(tmp_path / "data")
    other = json.loads((data / "tiny.json").read_text())
    for article in other["data"]:
        article["title"] = "other " + article["title"]
    (data / "other.json").write_text(json.dumps(other), encoding="utf-8")
    checkpoints = tmp_path / "checkpoints"
    common = ["--data", str(data), "--out", str(tmp_path / "reader"), "--checkpoints", str(checkpoints)]
    common += ["--held-out", "0.34", "--threads", "1"]
    with pytest.raises(SystemExit, match="no file nowhere"):
        train_reader.main([*common, "--sources", "nowhere", "--max-steps", "1"])
    train_reader.main([*common, "--sources", "other", "--max-steps", "1", "--batch-size", "64"])
    start = next(r for r in map(json.loads, (checkpoints / "train-log.jsonl").read_text().splitlines()) if "setup" in r)
    assert start["setup"]["sources"] == ["other"]
    _, held = split_held_out(read_squad_folder(data), 0.34, 13)
    trained = [p for p in read_squad_folder(data) if p.source == "other" and p not in held]
    assert trained and start["examples"] == len(make_examples(trained, 13))


def test_a_later_stage_starts_from_a_calibrated_folder_as_it_was_trained(tmp_path, tiny_reader_dir):
    import shutil

    from safetensors.torch import load_file

    folder = tmp_path / "reader"
    shutil.copytree(tiny_reader_dir, folder)
    stored = load_file(str(folder / "model.safetensors"))["qa_outputs.bias"].float()
    (folder / "calibration.json").write_text(json.dumps({"start_logit_shift": 1.5}), encoding="utf-8")
    weights = trained_weights(folder)
    assert float(weights["qa_outputs.bias"][0]) == pytest.approx(float(stored[0]) - 1.5, abs=1e-3)
    assert float(weights["qa_outputs.bias"][1]) == pytest.approx(float(stored[1]), abs=1e-3)


def test_a_new_stage_joins_the_kept_summaries_of_stages_whose_logs_are_gone(tmp_path):
    from training.model_card import STAGES_FILE, training_stages

    model = tmp_path / "reader"
    model.mkdir()
    earlier = [
        {"setup": {"epochs": 3.0}, "examples": 10, "no_answer_share": 0.3, "steps": 5, "loss": 3.0, "reschedules": []}
    ]
    (model / STAGES_FILE).write_text(json.dumps(earlier), encoding="utf-8")
    log = tmp_path / "stage2.jsonl"
    records = [
        {"event": "start", "setup": {"epochs": 1.0, "sources": ["new-wiki"]}, "examples": 4, "no_answer_share": 0.5},
        {"step": 2, "loss": 2.5},
    ]
    log.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    stages = training_stages(model, [tmp_path / "gone.jsonl", log])
    assert stages[0] == earlier[0]
    assert stages[1]["setup"]["sources"] == ["new-wiki"] and stages[1]["steps"] == 2
    assert json.loads((model / STAGES_FILE).read_text()) == stages


def test_logistic_fit_finds_the_weights_that_made_the_labels():
    import numpy as np

    from training.no_answer import fit_logistic

    rng = np.random.default_rng(3)
    features = rng.normal(size=(4000, 2))
    chance = 1 / (1 + np.exp(-(features @ np.array([1.5, -2.0]) + 0.5)))
    labels = rng.random(4000) < chance
    weights, bias = fit_logistic(features, labels)
    assert weights == pytest.approx([1.5, -2.0], abs=0.2)
    assert bias == pytest.approx(0.5, abs=0.15)


def test_the_sentence_fallback_threshold_is_where_sentence_answers_help_the_balance_and_off_when_none_does():
    import numpy as np

    from training.no_answer import Readings, choose_fallback_score

    def readings(sentence, answerable, best_evidence):
        n = len(sentence)
        return Readings(
            confidence=np.full(n, 0.2),  # every span too unsure to be the answer
            sentence=np.array(sentence),
            agreement=np.zeros(n, dtype=bool),
            lead=np.zeros(n),
            coverage=np.ones(n),
            year_conflict=np.zeros(n, dtype=bool),
            answerable=np.array(answerable),
            right=np.zeros(n, dtype=bool),
            evidence=np.zeros(n, dtype=bool),
            best_evidence=np.array(best_evidence),
        )

    # answerable readings whose best sentence holds the answer score 0.8 and 0.9; an unanswerable one 0.6
    found = readings([0.9, 0.8, 0.6, 0.3], [True, True, False, False], [True, True, False, False])
    answered, chance = np.zeros(4, dtype=bool), np.ones(4)
    threshold, figures = choose_fallback_score(found, answered, chance)
    assert 0.6 < threshold <= 0.8
    assert figures == {"answerable_evidence": 1.0, "unanswerable_abstained": 1.0, "sentence_answers": 2}
    # where no-answer wins (chance under one half), a sentence never stands in for the span
    assert choose_fallback_score(found, answered, np.zeros(4))[0] == 1.0
    # when every sentence answer would be wrong, there is none
    wrong = readings([0.9, 0.8, 0.6, 0.3], [True, True, False, False], [False, False, False, False])
    threshold, figures = choose_fallback_score(wrong, answered, chance)
    assert threshold == 1.0 and figures["sentence_answers"] == 0


def test_a_collection_under_one_title_is_many_articles_and_each_file_gives_held_out_articles(tmp_path, monkeypatch):
    from training import data as training_data

    folder = _tiny_squad(tmp_path / "data")
    posts = [
        {
            "title": "Posts",
            "paragraphs": [
                {
                    "context": f"Post {k} says {k}.",
                    "qas": [_qa(f"What does post {k} say?", f"Post {k} says {k}.", str(k))],
                }
            ],
        }
        for k in range(6)
    ]
    (folder / "posts.json").write_text(json.dumps({"version": "t", "data": posts}), encoding="utf-8")
    monkeypatch.setattr(training_data, "COLLECTION", 4)
    paragraphs = read_squad_folder(folder)
    assert len({p.group for p in paragraphs if p.source == "posts"}) == 6
    train, held = split_held_out(paragraphs, share=0.2, seed=5)
    assert {p.source for p in held} == {"tiny", "posts"}
    assert [p for p in held if p.unanswerable]  # real unanswerable questions for the no-answer fit
    assert not {p.group for p in train} & {p.group for p in held}


def _qa(question: str, context: str, answer: str) -> dict:
    return {"id": question, "question": question, "answers": [{"text": answer, "answer_start": context.rindex(answer)}]}


def test_averaged_readers_hold_the_weighted_mean_of_their_trained_weights_and_load(tmp_path, tiny_reader_dir):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from training.average import average, average_weights

    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(tiny_reader_dir, first)
    shutil.copytree(tiny_reader_dir, second)
    weights = load_file(str(second / "model.safetensors"))
    save_file({k: (v + 1.0).contiguous() for k, v in weights.items()}, str(second / "model.safetensors"))
    (second / "calibration.json").write_text(json.dumps({"start_logit_shift": 2.0}), encoding="utf-8")
    out = average([first, second], [3.0, 1.0], tmp_path / "soup")
    soup = trained_weights(out)
    one, two = trained_weights(first), trained_weights(second)
    for key in ("qa_outputs.weight", "bert.encoder.layer.1.output.dense.weight"):
        assert torch.allclose(soup[key], 0.75 * one[key] + 0.25 * two[key], atol=2e-3)  # stored in fp16
    # the second reader's confidence shift is undone before averaging, not averaged in
    assert float(soup["qa_outputs.bias"][0]) == pytest.approx(
        float(0.75 * one["qa_outputs.bias"][0] + 0.25 * two["qa_outputs.bias"][0]), abs=2e-3
    )
    assert float(two["qa_outputs.bias"][0]) == pytest.approx(float(weights["qa_outputs.bias"][0]) + 1.0 - 2.0, abs=2e-3)
    assert json.loads((out / "training.json").read_text(encoding="utf-8"))["average_of"] == ["first", "second"]
    with pytest.raises(ValueError, match="one weight"):
        average_weights([one, two], [1.0])
    with pytest.raises(ValueError, match="same base"):
        average_weights([one, {k: v for k, v in two.items() if k != "qa_outputs.bias"}], [1.0, 1.0])


def test_the_model_card_credits_each_file_trained_on_and_share_alike_data_makes_the_weights_share_alike():
    from training.card_data import card_licence, data_table

    table = data_table({"squadshifts-reddit": 9000, "tydiqa-goldp-en-train": 3500})
    assert "| SQuAD-shifts, Reddit posts (`squadshifts-reddit`) | 9,000 | CC BY 4.0 |" in table
    assert "TyDi QA" in table and "Clark" in table and "Apache-2.0" in table
    assert card_licence({"squadshifts-reddit": 1, "covid-qa-early": 1}) == "cc-by-4.0"
    assert card_licence({"squadshifts-reddit": 1, "squad-train-pieces": 1}) == "cc-by-sa-4.0"


def test_tempting_windows_share_the_questions_rare_terms_and_the_answers_type_in_another_article():
    import random

    from training.tempting import TemptingWindows, answer_type

    sentences = [
        ["The new bridge over the Tagus cost 1.9 billion euros to build.", "Crossing it costs a toll of 1.80 euros."],
        ["The rover cost little.", "It landed in a region called Oxia Planum in March."],
        ["The new probe was built in Bremen.", "Building the new probe cost 300 million euros."],
    ]
    windows = TemptingWindows(sentences, ["bridge", "rover", "probe"])
    rng = random.Random(1)
    chosen = windows.window_for("How much did the new probe cost to build?", ("300 million euros",), "probe", rng)
    assert chosen is not None and "1.9 billion euros" in chosen  # the bridge's cost: right type, wrong subject
    assert "rover" not in chosen  # shares one term only
    # a name is wanted: the rover's landing place shares "landed"/"region" and holds a name inside the sentence
    landing = windows.window_for("In which region did the probe land?", ("Utopia Planitia",), "probe", rng)
    assert landing is not None and "Oxia Planum" in landing
    # never the question's own article, never a window holding the answer, None when nothing is shared
    assert windows.window_for("How much did the new probe cost to build?", ("1.9 billion euros",), "probe", rng) is None
    assert windows.window_for("Who painted the Mona Lisa?", ("Leonardo",), "probe", rng) is None
    assert (answer_type("1.9 billion"), answer_type("Oxia Planum"), answer_type("a toll")) == (
        "number",
        "name",
        "other",
    )


def test_tempting_negatives_are_unanswerable_and_off_by_default(tmp_path):
    from training.data import Paragraph

    def paragraph(group: str, context: str, question: str, answer: str) -> Paragraph:
        return Paragraph("news", group, context, ((question, ((answer, context.index(answer)),)),))

    paragraphs = [
        paragraph(
            "bridge",
            "The new bridge opened in May. The new bridge cost 1.9 billion euros to build.",
            "How much did the new bridge cost to build?",
            "1.9 billion euros",
        ),
        paragraph(
            "tunnel",
            "The new tunnel opened in June. The new tunnel cost 700 million euros to build.",
            "How much did the new tunnel cost to build?",
            "700 million euros",
        ),
    ]
    plain = make_examples(paragraphs, 13)
    assert make_examples(paragraphs, 13, tempting_negatives=0.0) == plain
    tempting = [e for e in make_examples(paragraphs, 13, tempting_negatives=1.0) if e.kind == "no-answer: tempting"]
    assert len(tempting) == 2  # each question against the other article's cost
    for example in tempting:
        assert example.answer_start is None
        assert not any(gold in example.context for gold in example.answers)
        assert "cost" in example.context


def test_the_model_card_of_a_soup_names_its_parts_and_their_weights(tmp_path):
    from retrieval.models.resolve import SHIPPED_MODELS_DIR
    from training.model_card import write_model_card

    model = tmp_path / "soup"
    model.mkdir()
    shutil.copy(SHIPPED_MODELS_DIR / "qabot-reader" / "calibration.json", model)
    (model / "training.json").write_text(json.dumps({"average_of": ["frozen-lower", "all-layers"], "weights": [1, 1]}))
    logs = []
    for name, freeze in (("frozen-lower", 2), ("all-layers", 0)):
        log = tmp_path / f"{name}.jsonl"
        start = {"event": "start", "setup": {"freeze_layers": freeze}, "examples": 8, "no_answer_share": 0.3}
        log.write_text(json.dumps(start) + "\n" + json.dumps({"step": 4, "loss": 3.1}) + "\n")
        logs.append(log)
    card = write_model_card(model, logs).read_text()
    assert "the average of the weights of 2 runs" in card and "weights 1 + 1" in card
    assert "| setting | part 1 | part 2 |" in card and "| freeze_layers | 2 | 0 |" in card
    assert "then `python -m training.average`" in card
