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

# Reproduce models/qabot-reader from the open QA data (about 2 hours 50 minutes on 2 cores; each
# run resumes after an interruption). Two runs from the base encoder over every training file,
# Reddit and Amazon at half weight, with unanswerable windows from elsewhere in the same article
# too: 2 epochs with the lowest 2 layers frozen, and 1.5 epochs with every layer trained (each
# 0.9 times the rate of the one above); their weights averaged into one model; then calibration
# (70% of questions assumed answerable) with the gold-paragraph figures on each dev set, the band
# thresholds chosen on both dev sets end to end (at most 10% of sure answers wrong on each), and
# the model card.
READER_WORK ?= $(HOME)/.cache/qabot/reader-training
TYDI_DEV ?= $(QA_TRAIN)/tydiqa-goldp-en-dev.json
READER_DIR := models/qabot-reader
READER_TRAIN = $(BIN)/python -m training.train_reader --data $(QA_TRAIN) --dev $(DEV_SET) \
	--same-article-negatives 0.3 --source-weight squadshifts-reddit=0.5 squadshifts-amazon=0.5
reader: $(RUNTIME)
	$(READER_TRAIN) --epochs 2.0 --checkpoints $(READER_WORK)/frozen-lower --out $(READER_WORK)/frozen-lower/model
	$(READER_TRAIN) --epochs 1.5 --freeze-layers 0 --layer-decay 0.9 \
		--checkpoints $(READER_WORK)/all-layers --out $(READER_WORK)/all-layers/model
	$(BIN)/python -m training.average --model $(READER_WORK)/frozen-lower/model --model $(READER_WORK)/all-layers/model \
		--out $(READER_DIR)
	$(BIN)/python -m training.calibrate --data $(QA_TRAIN) --dev $(DEV_SET) $(TYDI_DEV) --model $(READER_DIR) \
		--answerable-share 0.7 --log $(READER_WORK)/frozen-lower/train-log.jsonl --log $(READER_WORK)/all-layers/train-log.jsonl
	$(BIN)/qabot eval $(DEV_SET) --reader $(READER_DIR) --index $(READER_WORK)/dev-index-xquad \
		--json-out $(READER_WORK)/dev-xquad.json
	$(BIN)/qabot eval $(TYDI_DEV) --reader $(READER_DIR) --index $(READER_WORK)/dev-index-tydi \
		--json-out $(READER_WORK)/dev-tydi.json
	$(BIN)/python -m training.bands $(READER_WORK)/dev-xquad.json $(READER_WORK)/dev-tydi.json --model $(READER_DIR)
	$(BIN)/python -m training.model_card --model $(READER_DIR) --data $(QA_TRAIN) \
		--log $(READER_WORK)/frozen-lower/train-log.jsonl --log $(READER_WORK)/all-layers/train-log.jsonl

clean:
	rm -rf $(VENV) .pytest_cache
