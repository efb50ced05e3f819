# The two commands of the README: `make demo` and `make test`. Each does all set-up from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= $(CURDIR)/demo

export PROJECT_ROOT := $(CURDIR)
export AIRFLOW_CONFIG := $(CURDIR)/airflow.cfg
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.PHONY: install demo test lint format services clean

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
	@mkdir -p $(DEMO_DIR)
	@test -f $(DEMO_DIR)/onetable.key || $(BIN)/onetable store new-key $(DEMO_DIR)/onetable.key
	$(BIN)/onetable demo generate --out $(DEMO_DIR)
	@export ONETABLE_STORE_KEY=$$(cat $(DEMO_DIR)/onetable.key) ONETABLE_STATE_DIR=$(DEMO_DIR)/state; \
	  $(BIN)/onetable store init && \
	  $(BIN)/onetable contracts check && \
	  $(BIN)/onetable store status
	@echo "demo: county truth in $(DEMO_DIR)/truth, registry in $(DEMO_DIR)/registry"
	@echo "demo: store in $(DEMO_DIR)/state (encrypted), key in $(DEMO_DIR)/onetable.key (outside it)"
	@echo "demo: the department systems and the pipeline are not built yet; this run made the county, the key and the store"

clean:
	rm -rf $(VENV) .airflow .airflow-test $(DEMO_DIR)
