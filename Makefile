# provisio — the two commands: `make run` (demo server) and `make test` (everything CI checks).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint typecheck pytest bench conformance clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# The base URL is also written to .env (read by every provisio command run here), so the URLs that later
# CLI commands print match this server whatever PORT was.
run: $(VENV)/.installed
	@base="$${PROVISIO_BASE_URL:-http://$(HOST):$(PORT)}"; touch .env; \
	  { grep -v '^PROVISIO_BASE_URL=' .env || true; echo "PROVISIO_BASE_URL=$$base"; } > .env.tmp && mv .env.tmp .env
	PROVISIO_BASE_URL=$${PROVISIO_BASE_URL:-http://$(HOST):$(PORT)} $(BIN)/provisio demo
	PROVISIO_BASE_URL=$${PROVISIO_BASE_URL:-http://$(HOST):$(PORT)} $(BIN)/provisio serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
