# Smart Stream: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
PORT ?= 8080
STAMP := $(VENV)/.installed

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# Reinstall whenever the lock or the project's metadata change.
$(STAMP): $(BIN)/python requirements/dev.txt pyproject.toml
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements/dev.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the locked dependencies

dev: $(STAMP) ## Start the local server on http://127.0.0.1:$(PORT), audio in ./audio_files
	PORT=$(PORT) $(BIN)/python -m local_server

test: $(STAMP) ## Run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) sam-install ## ruff, mypy, cfn-lint via sam validate --lint, sam build, actionlint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	for d in functions/*/; do $(BIN)/mypy --no-error-summary "$$d" || exit 1; done
	$(SAM_VENV)/bin/sam validate --lint
	$(SAM_VENV)/bin/sam build
	$(BIN)/actionlint .github/workflows/*.yml

format: $(STAMP) ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

sam-install: $(SAM_VENV)/bin/sam ## Install aws-sam-cli in its own environment
$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli

build: sam-install ## sam build (offline: pip cross-installs for python3.13)
	$(SAM_VENV)/bin/sam build

lock: $(BIN)/python ## Regenerate the lock files from pyproject.toml
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 pyproject.toml -o requirements/app.txt
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --extra dev -c requirements/app.txt pyproject.toml -o requirements/dev.txt

bench: $(STAMP) ## Run the benchmarks and print their figures
	$(BIN)/python -m bench

clean: ## Remove build output and caches (keeps .venv and your audio)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: help install dev test lint format sam-install build lock bench clean
