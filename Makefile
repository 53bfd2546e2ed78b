# Shopfront: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run run-cluster test lint schema install test-deps bench mutate clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## Set up, migrate, seed the demo shop (only into an empty database) and serve.
run: install
	$(BIN)/shopfront migrate
	$(BIN)/shopfront seed --demo
	$(BIN)/shopfront serve

## Several processes on loopback: a throwaway PostgreSQL, 2 API processes, 2 projector
## processes (one leads); prints URLs and tokens, Ctrl-C stops it all. PORTS="8000 8001".
PORTS ?= 8000 8001
run-cluster: install test-deps
	$(BIN)/python scripts/run_cluster.py --ports $(PORTS)

## Lint, type-check, run the whole suite on SQLite, then the integration, e2e and
## reliability suites again on PostgreSQL (a throwaway server started by the tests).
test: install test-deps lint
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest --db=postgresql tests/integration tests/e2e tests/reliability

test-deps:
	./scripts/install-test-deps.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/shopfront schema diff

## Measure the performance figures of docs/performance.md (10-20 min; the seeded data set
## is cached under var/bench/). Not part of `make test`. Options: make bench BENCH_ARGS="--help";
## the rows on PostgreSQL next to SQLite's: BENCH_DB=both make bench (or postgresql)
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

## Mutation testing (mutmut) over the modules where a silent bug loses or leaks data, each
## against its own fast tests, in scratch copies under var/mutate/ (about 30 min on 2 cores).
## Not part of `make test`. One module: make mutate MODULE=domain/event_log.py
mutate: install
	$(BIN)/python scripts/mutate.py $(MODULE)

## Re-export schema.graphql from the code (review the diff!).
schema: install
	$(BIN)/shopfront export-schema > schema.graphql

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
