# Research Engine: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint format check-migrations vendor clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	PORT=$(PORT) $(PY) manage.py run_demo

# Local PostgreSQL and Redis, used for the backend-specific tests when they answer.
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres
REDIS_TEST_URL ?= redis://127.0.0.1:6379/0

# Pass 1: the whole suite on the environment's settings (SQLite and the in-memory layer
# by default; CI exports DATABASE_URL and REDIS_URL so it runs on PostgreSQL and Redis).
# Pass 2, when the environment did not choose PostgreSQL: the tests that need the Django
# database itself on PostgreSQL (row locks under concurrency), if PostgreSQL answers.
test: $(VENV)/.installed
	CHANNEL_LAYER_PREFIX=research-test-$$$$ $(PY) -m pytest
	@if [ -z "$$DATABASE_URL" ]; then \
	  if $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
	    echo "== PostgreSQL-specific tests =="; \
	    DATABASE_URL=$(PG_URL) DATABASE_TEST_NAME=test_research_engine_pg CHANNEL_LAYER_PREFIX=research-test-$$$$ \
	      $(PY) -m pytest -m postgres -p no:cacheprovider; \
	  else echo "PostgreSQL is not reachable on 127.0.0.1:5432: its specific tests were skipped"; fi; \
	fi

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check-migrations: $(VENV)/.installed
	$(PY) manage.py makemigrations --check --dry-run

# Re-fetch the vendored front-end libraries (static/vendor/), integrity-checked.
vendor:
	bash scripts/vendor.sh

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
