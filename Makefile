# aaiti: two commands do everything on a fresh clone (Python 3.11, Node 20 for the dashboard).
#   make run    create .venv, install, build the dashboard, migrate, serve on http://127.0.0.1:8000 (SQLite in ./var)
#   make test   create .venv, install, lint, type-check, check layering, run every test
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= ml,dev,postgres,distributed

.PHONY: run test install frontend frontend-test browser lint typecheck layers pytest bench clean lock audit

# constraints.txt pins every transitive dependency to the versions the suite passed with (RELIABILITY CFG-06).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

frontend:
	@if command -v npm >/dev/null 2>&1; then \
		cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build; \
	else echo "npm not found: the API runs, the dashboard is not built (see README)"; fi

frontend-test:
	@if command -v npm >/dev/null 2>&1; then \
		cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run typecheck && npm test && npm run build; \
	else echo "npm not found: skipping dashboard checks"; fi

# Browser tests drive Debian's chromium (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium is missing: sudo apt-get install -y chromium"; exit 1; fi; }

run: install frontend
	AAITI_ENV=$${AAITI_ENV:-dev} $(BIN)/aaiti serve

lint: install
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/hadolint Dockerfile

typecheck: install
	$(BIN)/mypy

layers: install
	$(BIN)/lint-imports

pytest: install browser
	$(BIN)/pytest -q

test: lint typecheck layers frontend-test pytest

# Benchmarks print ratios against peers measured in the same run. vectorbt needs pandas >= 3 (statsforecast
# needs < 3), so the backtest peers live in their own venv.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet numpy pydantic ta-lib vectorbt backtesting
	touch $@

bench: install $(BENCH_VENV)/.installed
	$(BIN)/python bench/api.py
	PYTHONPATH=src $(BENCH_VENV)/bin/python bench/backtest.py
	$(BIN)/python bench/models.py
	$(BIN)/python bench/feed.py
	$(BIN)/python bench/login_flood.py

# Re-resolve the newest versions pyproject.toml allows and pin them (then run make test before committing).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet -e ".[$(EXTRAS)]"
	{ echo "# Exact versions the test suite passed with (make lock regenerates; torch is pinned in pyproject.toml)."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v -e '^torch==' -e '^#'; } > constraints.txt
	rm -rf .venv-lock

# Known-vulnerability scan of the pinned set. Needs PyPI's JSON API or OSV, which this project's CI machines
# cannot reach (their registry is a mirror), so it is not part of `make test`.
audit:
	test -x .venv-audit/bin/pip-audit || { $(PYTHON) -m venv .venv-audit && .venv-audit/bin/python -m pip install --quiet pip-audit; }
	.venv-audit/bin/pip-audit --strict -r constraints.txt

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
