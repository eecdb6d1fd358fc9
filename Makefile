# One task runner. `make run` and `make test` work on a fresh clone with only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)            ## the offline walk-through: archive the bundled page, retrieve, audit
	$(BIN)/preserve demo

test: $(STAMP)           ## the test suite (PostgreSQL tests skip when no server is reachable, except in CI)
	$(BIN)/python -m pytest

lint: $(STAMP)           ## ruff and mypy --strict
	$(BIN)/ruff check preserve tests bench
	$(BIN)/mypy

docs: $(STAMP)           ## regenerate docs/cli.md from --help
	$(BIN)/python -m preserve.clidoc > docs/cli.md

bench: $(STAMP)          ## benchmarks, each printing its ratio against a peer tool
	$(BIN)/python bench/fixity_hash.py
	$(BIN)/python bench/crawl_site.py --articles 3000 --describe
	$(BIN)/python bench/crawl_site.py --articles 500 --delay-ms 20

clean:
	rm -rf $(VENV) preserve-data .pytest_cache .mypy_cache .ruff_cache
