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

# Reproduce models/qabot-reader from the open QA data (hours on a CPU; resumes after an interruption).
reader: $(STAMP)
	$(BIN)/python -m training.train_reader --data $(QA_TRAIN) --dev $(DEV_SET) --epochs 1.0 --out models/qabot-reader
	$(BIN)/python -m training.calibrate --data $(QA_TRAIN) --dev $(DEV_SET) --model models/qabot-reader

clean:
	rm -rf $(VENV) .pytest_cache
