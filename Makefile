# The two commands: `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export CACHEBASH_DATA_DIR ?= $(CURDIR)/.cachebash

# The npm Firestore stand-in (pinned in tests/emulator); installed when npm exists, else its tests skip.
EMULATOR_DEPS := tests/emulator/node_modules/.installed

.PHONY: install serve test test-google emulator-deps console-vendor lint clean cloud-local

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

$(EMULATOR_DEPS): tests/emulator/package.json tests/emulator/package-lock.json
	cd tests/emulator && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

emulator-deps:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(EMULATOR_DEPS); \
	else echo "npm not found: the Firestore stand-in tests will be skipped" >&2; fi

test: $(VENV)/.installed-test emulator-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The same suite with Google's Firestore emulator started for it (the gcloud component).
test-google: $(VENV)/.installed-test emulator-deps
	$(PYTHON) tests/support/firestore_emulator.py exec-google -- $(BIN)/python -m pytest $(PYTEST_ARGS)

# The whole Google Cloud topology on this machine, in the foreground until Ctrl-C (README, "The whole
# cloud locally"): emulators, every function under functions-framework, Pub/Sub push, the Firestore relay.
$(VENV)/.installed-cloud: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[cloud]'
	@touch $@ $(VENV)/.installed

cloud-local: $(VENV)/.installed-cloud
	$(BIN)/python -m cachebash.cloud_local $(CLOUD_LOCAL_ARGS)

# The Firebase JS SDK's compat builds the web console loads, copied from the pinned npm package
# (tests/emulator) and committed, so `make serve` needs no Node. Rerun after bumping `firebase`.
CONSOLE_VENDOR := shared/cachebash/interface/console_static/vendor
FIREBASE_JS := tests/emulator/node_modules/firebase

console-vendor:
	@if ! [ -f $(FIREBASE_JS)/package.json ]; then \
	  if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(EMULATOR_DEPS); \
	  else echo "console-vendor needs npm (for tests/emulator's pinned firebase package)" >&2; exit 1; fi; fi
	mkdir -p $(CONSOLE_VENDOR)
	cp $(FIREBASE_JS)/firebase-app-compat.js $(FIREBASE_JS)/firebase-auth-compat.js \
	  $(FIREBASE_JS)/firebase-messaging-compat.js $(CONSOLE_VENDOR)/
	sed -i -e '/^\/\/# sourceMappingURL=/d' $(CONSOLE_VENDOR)/firebase-*-compat.js
	version=$$(node -p 'require("./$(FIREBASE_JS)/package.json").version') && \
	  printf 'firebase %s\n%s\n' "$$version" \
	  "Compat builds copied from npm firebase@$$version by make console-vendor; sourceMappingURL lines removed (no maps)." \
	  > $(CONSOLE_VENDOR)/VERSION

lint: $(VENV)/.installed-test
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/ruff check shared tests functions
	$(BIN)/mypy shared

clean:
	rm -rf $(VENV) build *.egg-info shared/*.egg-info tests/emulator/node_modules
