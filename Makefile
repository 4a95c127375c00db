# Two commands on a fresh clone: `make chat` (set up, index seeds/, chat) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore
# What each target needs, installed once: the runtime for chat, and also the test and Milvus extras.
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

QA_TRAIN ?= ../shared/qa-train
DEV_SET ?= ../shared/eval/xquad-en-dev.json

.PHONY: setup chat test lint bench reader clean

$(BIN)/python:
	@echo "Making $(VENV) with $(PYTHON)..."
	@$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(PIP_INSTALL) --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	@echo "Installing qabot into $(VENV) (a few minutes the first time)..."
	@$(PIP_INSTALL) -e .
	@touch $@

# The extras include the runtime, so `make chat` after `make test` installs nothing.
$(DEV): pyproject.toml | $(BIN)/python
	@echo "Installing qabot with its test and Milvus extras into $(VENV) (a few minutes the first time)..."
	@$(PIP_INSTALL) -e '.[dev,milvus]'
	@touch $@ $(RUNTIME)

setup: $(DEV)

# The demo over seeds/ has an index of its own in the project, apart from the user's.
chat: $(RUNTIME)
	@$(BIN)/qabot chat --index .qabot/demo-index

test: $(DEV)
	$(BIN)/python -m pytest

lint: $(DEV)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(DEV)
	$(BIN)/python benchmarks/run.py

# Reproduce models/qabot-reader from the open QA data (about 1 hour 20 minutes on 2 cores; it
# resumes after an interruption): 2 epochs from the base encoder over every training file, Reddit
# and Amazon at half weight, with unanswerable windows from elsewhere in the same article too;
# then calibration (70% of questions assumed answerable, fixed band thresholds chosen on the dev
# sets), with the gold-paragraph figures on each dev set.
READER_WORK ?= $(HOME)/.cache/qabot/reader-training
TYDI_DEV ?= $(QA_TRAIN)/tydiqa-goldp-en-dev.json
reader: $(RUNTIME)
	$(BIN)/python -m training.train_reader --data $(QA_TRAIN) --dev $(DEV_SET) --epochs 2.0 \
		--same-article-negatives 0.3 --source-weight squadshifts-reddit=0.5 squadshifts-amazon=0.5 \
		--checkpoints $(READER_WORK) --out models/qabot-reader
	$(BIN)/python -m training.calibrate --data $(QA_TRAIN) --dev $(DEV_SET) $(TYDI_DEV) --model models/qabot-reader \
		--answerable-share 0.7 --sure-confidence 0.85 --sure-coverage 0.6 --log $(READER_WORK)/train-log.jsonl

clean:
	rm -rf $(VENV) .pytest_cache
