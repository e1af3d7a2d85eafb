# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	OPTRIA_DEMO_MODE=$${OPTRIA_DEMO_MODE:-true} $(BIN)/optria-iq demo

test: $(STAMP)
	$(BIN)/ruff check webapp tests scripts alembic
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check webapp tests scripts alembic

clean:
	rm -rf $(VENV) var
