# Every command creates .venv in the repository root when it is missing and installs the project.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test install bench

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m compress recipe dc_clip

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	examples/android/core/jvm-test.sh install
	$(PY) -m pytest -q --numprocesses auto --maxprocesses 4 --dist loadfile --durations=15

bench: $(VENV)/.installed
	$(PY) bench/distiller_overhead.py
