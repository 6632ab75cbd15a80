# `make demo` runs the day's job on the embedded defaults; `make test` runs the whole suite.
# Both install everything they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py ingest samples/dumps/*.txt
	$(BIN)/python manage.py import_subscribers samples/subscribers.csv
	$(BIN)/python manage.py send_digests
	@echo "Outbox: $(CURDIR)/var/outbox"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

test: lint
	$(BIN)/pytest

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
