# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow bench install

$(BIN)/onestop: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/onestop

install: $(BIN)/onestop

demo: $(BIN)/onestop
	$(BIN)/onestop demo

# Lint, types and the layer contract first (ruff; mypy strict on models/; import-linter,
# README: Layout), then installs what the suite needs once (Debian packages, Apache
# Kafka's jars) and runs it.
test: $(BIN)/onestop
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	PYTHON=$(BIN)/python tests/install-needs
	$(BIN)/python -m pytest -m "not slow"

# The long outages (70 s and 5 minutes, per broker): about 15 minutes more.
test-slow: $(BIN)/onestop
	PYTHON=$(BIN)/python tests/install-needs
	$(BIN)/python -m pytest -m slow

bench: $(BIN)/onestop
	$(BIN)/python tests/bench/bench_replay.py
	$(BIN)/python tests/bench/bench_pipeline.py
	$(BIN)/python tests/bench/bench_sink.py
	$(BIN)/python tests/bench/bench_soak.py
	$(BIN)/python tests/bench/bench_peers.py
