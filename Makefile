# The README's two commands: `make run` and `make test`.
SHELL := /bin/sh
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000

# Installs come from uv.lock (uv's lockfile for the workspace: the server here, the CLI in ./cli),
# exactly: `uv sync --locked` refuses a lock that no longer matches pyproject.toml. uv itself is
# bootstrapped at this version with the venv's pip, then locked like every other tool (the dev
# extra pins the same version).
UV_VERSION := 0.13.9
UV := $(BIN)/uv
# uv installs into .venv (made by scripts/find-python's interpreter) and never downloads a Python.
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test lint format install lock migrate seed screenshots clean

$(UV):
	@python=$$(scripts/find-python) || exit 1; \
	if [ ! -x $(PY) ]; then echo "Creating $(VENV) with $$python"; "$$python" -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

$(VENV)/.installed: pyproject.toml cli/pyproject.toml uv.lock | $(UV)
	@$(UV) lock --check --quiet || { \
	    echo "make install: uv.lock does not match pyproject.toml or cli/pyproject.toml." >&2; \
	    echo "After changing dependencies, run 'make lock' and commit uv.lock with them." >&2; \
	    exit 1; }
	$(UV) sync --locked --extra dev --python $(PY)
	@touch $@

install: $(VENV)/.installed

# Refresh uv.lock after editing dependencies in pyproject.toml or cli/pyproject.toml: `make lock`
# adds and removes what changed and keeps every other pin (`uv lock`); `make lock UPGRADE=1`
# moves every package to the newest release its range allows (`uv lock --upgrade`).
# Then `make install` installs it; commit uv.lock with the pyproject change.
lock: | $(UV)
	$(UV) lock $(if $(UPGRADE),--upgrade)

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
	$(BIN)/mypy

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
	rm -rf $(VENV) data/*.sqlite3 staticfiles .pytest_cache dist
