# The README's two commands: `make run` and `make test`.
SHELL := /bin/sh
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format install migrate seed screenshots clean

$(VENV)/.installed: pyproject.toml cli/pyproject.toml
	@python=$$(scripts/find-python) || exit 1; \
	if [ ! -x $(PY) ]; then echo "Creating $(VENV) with $$python"; "$$python" -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./cli -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

migrate: install
	@mkdir -p data
	$(PY) manage.py migrate --noinput --verbosity 0
	@echo "Database is migrated."

seed: migrate
	$(PY) manage.py seed_demo

run: seed
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo
	@echo "keyportal is running at http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	@echo "Beside the web server: the task worker (mail, expiry reminders, the stale-key policy,"
	@echo "housekeeping) and the scheduler that enqueues those jobs. Each line says which one."
	@echo "Demo logins are printed above by seed_demo."
	@echo "The CLI: .venv/bin/keyportal login   (then approve in the browser)"
	@echo
	$(PY) scripts/run-all --bind $(HOST):$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Refresh docs/screenshots/ from the browser tests, and the demo-*.png ones from the demo data.
screenshots: install
	KEYPORTAL_DOCS_SCREENSHOTS=1 $(PY) -m pytest tests/e2e -q
	$(PY) scripts/demo_screenshots.py

clean:
	rm -rf $(VENV) data/*.sqlite3 staticfiles .pytest_cache
