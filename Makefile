# The developer interface. Every target works on a fresh clone: `make install` is implied.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install tools test pytest lint bench run invoke build preflight deploy smoke clean lock openapi browser

# .venv is rebuilt whenever the pinned requirements change.
$(VENV)/.installed: requirements/runtime.txt requirements/dev.txt pyproject.toml
	@echo "Installing Python dependencies into $(VENV)/ (pinned in requirements/; about 1-2 minutes the first time, quiet while pip works)..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Lint and deploy tools in their own environments (.venv-tools/): aws-sam-cli and checkov pin
# boto3 versions that conflict with each other and with requirements/dev.txt.
TOOLS := .venv-tools
$(TOOLS)/sam/.installed: requirements/tools.txt
	rm -rf $(TOOLS)/sam && $(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet --disable-pip-version-check -r requirements/tools.txt
	touch $@

$(TOOLS)/checkov/.installed: requirements/tools-checkov.txt
	rm -rf $(TOOLS)/checkov && $(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet --disable-pip-version-check -r requirements/tools-checkov.txt
	touch $@

tools: $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed

## test: lint, then the whole suite (unit, integration on a real broker and PostgreSQL, end to end)
test: lint pytest

pytest: install browser
	$(PY) -m pytest $(PYTEST_ARGS)

## browser: Debian's chromium package for the status page's browser test, installed when missing
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || command -v google-chrome >/dev/null 2>&1 || { \
	  if [ -f /etc/debian_version ]; then \
	    $(SUDO) apt-get install -y --no-install-recommends chromium \
	    || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; }; \
	  else \
	    echo "The status page's browser test needs Chromium: install it from your system's packages" \
	      "(chromium, chromium-browser or google-chrome on PATH)" >&2; exit 1; \
	  fi; }

# The template: `sam validate --lint` runs cfn-lint offline (the region only picks the schema,
# no credentials are used); checkov's skipped checks are justified next to each resource
# (Metadata: checkov: skip:); `sam build` proves the layers build from the package registry.
lint: install tools
	$(VENV)/bin/ruff check layers functions tests bench
	$(VENV)/bin/ruff format --check layers functions tests bench
	$(VENV)/bin/mypy
	$(TOOLS)/sam/bin/cfn-lint template.yaml
	$(TOOLS)/sam/bin/sam validate --lint --region us-east-1
	$(TOOLS)/checkov/bin/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download
	for t in infra/*.yaml; do $(TOOLS)/sam/bin/cfn-lint $$t && $(TOOLS)/checkov/bin/checkov --file $$t --framework cloudformation --quiet --compact --skip-download || exit 1; done
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(TOOLS)/sam/bin/cfn-lint ci/github-oidc.yaml
	$(TOOLS)/checkov/bin/checkov --file ci/github-oidc.yaml --framework cloudformation --quiet --compact --skip-download
	$(MAKE) --no-print-directory build

## build: sam build without Docker (layers cross-built for arm64 + Python 3.13 from wheels)
build: tools
	$(TOOLS)/sam/bin/sam build

## deploy: preflight, sam build, sam deploy with the samconfig.toml environment ENV (default, staging, prod)
# DEPLOY_ARGS: more sam deploy options (CI: --no-confirm-changeset --role-arn ARN).
# The region is REGION, else AWS_REGION, else your AWS configuration (none is pinned in
# samconfig.toml). preflight refuses, naming the value, a placeholder or missing value, no
# region, or too little Lambda concurrency for prod's reserved checker executions.
ENV ?= default
SAMCONFIG ?= samconfig.toml
REGION ?= $(AWS_REGION)
REGION_ARG := $(if $(REGION),--region $(REGION))
preflight: install
	$(VENV)/bin/webchecker preflight --config-env $(ENV) --config $(SAMCONFIG) $(REGION_ARG) $(PREFLIGHT_ARGS)

deploy: preflight
	$(MAKE) --no-print-directory build
	$(TOOLS)/sam/bin/sam deploy --config-env $(ENV) --config-file $(abspath $(SAMCONFIG)) $(REGION_ARG) $(DEPLOY_ARGS)

## smoke: after a deploy, one scheduler tick on the deployed stack of ENV; fails saying how to roll back
smoke: install
	$(VENV)/bin/webchecker smoke --config-env $(ENV) --config-file $(SAMCONFIG) $(REGION_ARG)

## invoke: a handler on an event file without Docker, e.g. make invoke FUNCTION=writer EVENT=events/writer-msk.json
invoke: install
	$(VENV)/bin/webchecker invoke $(FUNCTION) $(EVENT) $(INVOKE_ARGS)

## bench: every benchmark in bench/, each printing ratios against a baseline measured in the same run
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

## run: the whole pipeline on loopback (embedded Kafka, PostgreSQL, Parameter Store), live status
run: install
	$(VENV)/bin/webchecker local $(RUN_ARGS)

## openapi: regenerate docs/openapi.json from the API's routes and models (a test keeps them equal)
openapi: install
	$(PY) -m webchecker.api.document > docs/openapi.json

## lock: re-pin requirements/dev.txt from pyproject.toml (run after changing dependencies)
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements/runtime.txt -e '.[dev]'
	{ echo "# Development dependencies, pinned (make lock). Includes the runtime pins."; echo "-r runtime.txt"; \
	  .venv-lock/bin/pip freeze --exclude-editable | grep -vxFf <(grep -v '^#' requirements/runtime.txt); } > requirements/dev.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
