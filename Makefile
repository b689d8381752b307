# Shiplog's front door: `make run`, `make test`, `make lint`, `make bench`.
PYTHON ?= python3
ADDR ?= 127.0.0.1:8000
# How much faster than it happened to replay the demo on a fresh database (0: at once).
DEMO_SPEED ?= 0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-postgres lint format bench chaos install clean

$(STAMP): requirements/lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/lock.txt
	touch $(STAMP)

install: $(STAMP)

## Run Shiplog on the embedded default: SQLite, a broker with no server, worker, beat, web,
## and the Pyodide 0.26.2 demo loaded through the webhook endpoints.
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runlocal --addr $(ADDR) --demo-speed $(DEMO_SPEED)

## Run the test suite (SQLite unless DATABASE_URL says otherwise).
test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

## The soak with faults (issue #8): ~20 min; `make chaos CHAOS_ARGS=--quick` takes ~3.
chaos: install
	$(PY) -m bench chaos $(CHAOS_ARGS)
