# The two commands: `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export CACHEBASH_DATA_DIR ?= $(CURDIR)/.cachebash

.PHONY: install serve test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

serve: $(VENV)/.installed
	$(BIN)/cachebash serve

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/ruff check shared tests functions
	$(BIN)/mypy shared

clean:
	rm -rf $(VENV) build *.egg-info shared/*.egg-info
