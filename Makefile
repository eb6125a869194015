# Every target bootstraps .venv on first use; re-running is cheap (a stamp file tracks pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow test-faults lint fmt bench migrate clean chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

migrate: $(STAMP)
	$(BIN)/nps db upgrade

run: migrate
	$(BIN)/nps serve

# Debian's Chromium, which the browser test drives through Playwright (installed with the dev extras; no
# `playwright install`). Needs root; .ci/run does the same before `make test`.
chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not faults" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# The fault suite (tests/faults): kill -9, provider outages, a PostgreSQL restart, concurrent storms. Each test
# prints one figure line (what it tried, what survived). FAULTS_SIZE=small is the CI variant; FAULTS_* overrides.
test-faults: $(STAMP)
	FAULTS_SIZE=$(FAULTS_SIZE) $(BIN)/python -m pytest -m faults tests/faults $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Rewrites files: sorts imports, applies safe fixes, formats.
fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every script in benchmarks/, then the table of their figures in benchmarks/results/LATEST.md (summary.py).
# BENCH_ARGS=--quick for the short variants; PostgreSQL figures need TEST_DATABASE_URL.
bench: $(STAMP)
	$(BIN)/python benchmarks/summary.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
