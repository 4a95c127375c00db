# Two commands on a fresh clone: `make chat` (set up, index seeds/, chat) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

QA_TRAIN ?= ../shared/qa-train
DEV_SET ?= ../shared/eval/xquad-en-dev.json

.PHONY: setup chat test lint bench reader clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,milvus]'
	@touch $(STAMP)

setup: $(STAMP)

chat: $(STAMP)
	$(BIN)/qabot chat

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# Reproduce models/qabot-reader from the open QA data, in two stages (about 4 hours on 2 cores;
# each stage resumes after an interruption): 3 epochs from the base encoder, then 1 epoch from
# those weights with unanswerable windows from elsewhere in the same article too; then calibration.
READER_WORK ?= $(HOME)/.cache/qabot/reader-training
reader: $(STAMP)
	$(BIN)/python -m training.train_reader --data $(QA_TRAIN) --dev $(DEV_SET) --epochs 3.0 \
		--checkpoints $(READER_WORK) --out $(READER_WORK)/stage1-model
	$(BIN)/python -m training.train_reader --data $(QA_TRAIN) --dev $(DEV_SET) --epochs 1.0 --lr 5e-5 \
		--init $(READER_WORK)/last.pt --same-article-negatives 0.3 \
		--checkpoints $(READER_WORK)/stage2 --out models/qabot-reader
	$(BIN)/python -m training.calibrate --data $(QA_TRAIN) --dev $(DEV_SET) --model models/qabot-reader \
		--log $(READER_WORK)/train-log.jsonl --log $(READER_WORK)/stage2/train-log.jsonl

clean:
	rm -rf $(VENV) .pytest_cache
