# The developer interface. Every target works on a fresh clone: `make install` is implied.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install test pytest lint bench run invoke build deploy clean lock

# .venv is rebuilt whenever the pinned requirements change.
$(VENV)/.installed: requirements/runtime.txt requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

## test: lint, then the whole suite (unit, integration on a real broker and PostgreSQL, end to end)
test: lint pytest

pytest: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check layers functions tests bench
	$(VENV)/bin/ruff format --check layers functions tests bench
	$(VENV)/bin/mypy

## bench: every benchmark in bench/, each printing ratios against a baseline measured in the same run
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

## run: the whole pipeline on loopback (embedded Kafka, PostgreSQL, Parameter Store), live status
run: install
	$(VENV)/bin/webchecker local $(RUN_ARGS)

## lock: re-pin requirements/dev.txt from pyproject.toml (run after changing dependencies)
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements/runtime.txt -e '.[dev]'
	{ echo "# Development dependencies, pinned (make lock). Includes the runtime pins."; echo "-r runtime.txt"; \
	  .venv-lock/bin/pip freeze --exclude-editable | grep -vxFf <(grep -v '^#' requirements/runtime.txt); } > requirements/dev.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
