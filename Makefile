# One command surface, used the same way locally and in CI.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test chaos lint typecheck fmt clean openapi

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/fleetbatch demo

lint: $(STAMP)
	$(BIN)/ruff check src bench tests
	$(BIN)/ruff format --check src bench tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q -n 4 -m 'not chaos and not timing' --durations=25
	$(BIN)/pytest -q -m timing --durations=5

# The chaos run's quick preset (4 faults, ~4 minutes): CI runs it after the suite.
chaos: $(STAMP)
	$(BIN)/pytest -q -m chaos tests/integration/test_chaos.py

fmt: $(STAMP)
	$(BIN)/ruff format src bench tests
	$(BIN)/ruff check --fix src bench tests

openapi: $(STAMP)
	$(PY) scripts/openapi.py

clean:
	rm -rf $(VENV) .fleetbatch .pytest_cache .mypy_cache .ruff_cache
