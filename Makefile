# The two commands of the README: `make demo` and `make test`. Each does all set-up from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= $(CURDIR)/demo

export PROJECT_ROOT := $(CURDIR)
export AIRFLOW_CONFIG := $(CURDIR)/airflow.cfg
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.PHONY: install demo test lint format services airflow-init clean

install: $(VENV)/.installed

# Every resolved version is pinned in constraints.txt (Airflow's own constraints file cannot be fetched).
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	$(BIN)/pip check
	touch $@

services:
	bash tests/services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: services install lint
	$(BIN)/pytest

demo: install
	$(BIN)/onetable demo generate --out $(DEMO_DIR)
	$(BIN)/onetable demo run --out $(DEMO_DIR)

# Airflow's metadata database (in AIRFLOW_HOME) and the pool the DAG's tasks share.
airflow-init: install
	$(BIN)/airflow db migrate
	$(BIN)/airflow pools import airflow_pools.json

clean:
	rm -rf $(VENV) .airflow .airflow-test $(DEMO_DIR)

# Benchmark-only dependencies (Splink, for bench/baseline_splink.py), pinned in bench/constraints.txt.
.PHONY: bench-deps
bench-deps: install
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -c bench/constraints.txt -e '.[bench]'
	$(BIN)/pip check
