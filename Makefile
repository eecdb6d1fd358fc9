# One task runner. `make run` and `make test` work on a fresh clone with only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Tools we did not write, which tests run against our WARCs: pywb (replay),
# cdxj-indexer and py-wacz (validates our WACZ), in their own environment so
# their pins never touch ours.
TOOLS  := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
# The extractors ours is measured against (make bench only): readability-lxml pins
# chardet below what py-wacz needs, so they have an environment of their own.
EXTRACT := .venv-extract
EXTRACT_STAMP := $(EXTRACT)/.installed

.PHONY: run test lint docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet 'pywb>=2.8,<3' 'cdxj-indexer>=1.4,<2' 'fastwarc>=0.15' 'wacz>=0.5,<1'
	touch $(TOOLS_STAMP)

$(EXTRACT_STAMP):
	$(PYTHON) -m venv $(EXTRACT)
	$(EXTRACT)/bin/python -m pip install --quiet --upgrade pip
	$(EXTRACT)/bin/python -m pip install --quiet 'trafilatura>=2,<3' 'readability-lxml>=0.8' 'html-text>=0.6'
	touch $(EXTRACT_STAMP)

run: $(STAMP)            ## the offline walk-through: archive the bundled page, retrieve, audit
	$(BIN)/preserve demo

test: $(STAMP) $(TOOLS_STAMP)  ## the test suite (PostgreSQL tests skip when no server is reachable, except in CI)
	PRESERVE_TEST_TOOLS=$(CURDIR)/$(TOOLS)/bin $(BIN)/python -m pytest

lint: $(STAMP)           ## ruff and mypy --strict
	$(BIN)/ruff check preserve tests bench
	$(BIN)/mypy

docs: $(STAMP)           ## regenerate docs/cli.md from --help
	$(BIN)/python -m preserve.clidoc > docs/cli.md

bench: $(STAMP) $(TOOLS_STAMP) $(EXTRACT_STAMP)  ## benchmarks, each printing its ratio against a peer tool
	$(BIN)/python bench/fixity_hash.py --web-articles 8000 --files 16 --mb-per-file 128 --tools $(TOOLS)/bin
	$(BIN)/python bench/crawl_site.py --articles 3000
	$(BIN)/python bench/crawl_site.py --articles 2000 --delay-ms 20
	$(BIN)/python bench/crawl_site.py --articles 600 --describe --real-pages
	$(BIN)/python bench/large_body.py --mb 1024
	$(BIN)/python bench/s3_upload.py --mb 256
	$(BIN)/python bench/access_lookup.py --captures 1000000 --tools $(TOOLS)/bin
	$(BIN)/python bench/extraction.py --peers $(EXTRACT)/bin/python
	$(BIN)/python bench/import_speed.py --mb 1024 --tools $(TOOLS)/bin

clean:
	rm -rf $(VENV) $(TOOLS) $(EXTRACT) preserve-data .pytest_cache .mypy_cache .ruff_cache
