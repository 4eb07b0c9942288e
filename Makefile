# Every routine task is one command. Each target creates or reuses .venv; the dev install is
# redone only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes `make test` runs at once (pytest-xdist). Most tests wait on servers, sockets and
# disks more than they compute, so two workers take about 40 % off the suite's time on two
# cores; a third gained nothing more. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2

.PHONY: run test check bench bench-ai clean

run: $(STAMP)
	$(BIN)/jacameno serve

test: check tests/e2e/js/node_modules/.installed examples/js/node_modules/.installed
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m load.bench_eventstore

# Analysis and mastering beside librosa, pyloudnorm, Matchering and pedalboard (docs/benchmarks.md);
# the reference tools are the `bench` extra, installed here only.
bench-ai: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,ai,bench]'
	$(BIN)/python -m load.bench_ai

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# The `ai` extra is the worker's signal processing, tested by make test; its torch is the local
# CPU wheel (pyproject.toml pins the version).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,ai,peer]'
	touch $@

# The JavaScript Yjs clients of the e2e tests, exactly as package-lock.json pins them.
tests/e2e/js/node_modules/.installed: tests/e2e/js/package-lock.json
	npm ci --prefix tests/e2e/js --no-audit --no-fund
	touch $@

# The y-websocket@2.1.0 reference server that load/bench_broadcast measures beside ours.
load/reference/node_modules/.installed: load/reference/package-lock.json
	npm ci --prefix load/reference --no-audit --no-fund
	touch $@

# The JavaScript yjs clients that load/bench_broadcast --js drives.
load/js/node_modules/.installed: load/js/package-lock.json
	npm ci --prefix load/js --no-audit --no-fund
	touch $@

# The runnable client examples, tested by tests/e2e/test_examples.py.
examples/js/node_modules/.installed: examples/js/package-lock.json
	npm ci --prefix examples/js --no-audit --no-fund
	touch $@
