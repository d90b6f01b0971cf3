# Laurel developer commands. `make run` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint openapi bench worker clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## migrate and serve on :8000 (SQLite file by default)
	$(BIN)/laurel serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

worker: $(STAMP)
	$(BIN)/laurel worker

test: $(STAMP)  ## full suite: PostgreSQL (required) and SQLite
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check app tests benchmarks migrations
	$(BIN)/mypy app

openapi: $(STAMP)
	$(BIN)/laurel openapi --out openapi/openapi.json

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) laurel.db laurel.db-wal laurel.db-shm var
