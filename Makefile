# Rollguard — everything a fresh machine needs, from the two commands the README promises:
#   make drill   a simulated incident end to end on the local sandbox, with its timeline
#   make test    every check CI runs
# and, while working: make unit (fast), make integration, make template (see each target below).
SHELL := /bin/bash
PYTHON ?= $(shell PYENV_VERSION=3.13.0 command -v python3.13 || command -v python3.13)
export PYENV_VERSION ?= 3.13.0
VENV := .venv
TOOLS := .venv-tools
CHECKOV := .venv-checkov
CHECKOV_VERSION := 3.3.30
BIN := $(VENV)/bin
SCENARIO ?= bad-deploy

.PHONY: drill drills faults test lint typecheck unit integration policies template bench build clean chromium

$(BIN)/.installed: pyproject.toml
	test -x "$(PYTHON)" || { echo "python3.13 is required (pyenv: PYENV_VERSION=3.13.0)"; exit 1; }
	"$(PYTHON)" -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# sam and cfn-lint live in their own environment: aws-sam-cli pins its own boto3/pydantic.
$(TOOLS)/bin/.installed:
	"$(PYTHON)" -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet aws-sam-cli==1.170.0 cfn-lint==1.58.0
	touch $@

# checkov (the IaC scanner, tests/template/test_iac_scan.py) gets its own environment: pip cannot resolve
# its dependencies together with aws-sam-cli's pins. The stamp names the version, so a new pin reinstalls.
$(CHECKOV)/bin/.installed-$(CHECKOV_VERSION):
	rm -rf $(CHECKOV)
	"$(PYTHON)" -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

# The HTML incident report is checked in headless Chromium (tests/drills/test_report_in_browser.py):
# Debian's package, installed once (sudo when not root).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

drill: $(BIN)/.installed
	$(BIN)/rollguard drill $(SCENARIO)

drills: $(BIN)/.installed
	$(BIN)/rollguard drill --all

# The whole fault matrix (rollguard_cli/faults.py): every AWS call the drills' functions make, failed every way, once
# and persistently; 2680 cases over nine drills (about 45 minutes on 2 cores alone: 2680 in 3147 s on e8e041c with a
# make test beside it for 20 of them; approval-granted's 320 in 284 s). make test runs a fixed sample (tests/faults/).
faults: $(BIN)/.installed
	$(BIN)/python -m rollguard_cli.faults --jobs 2

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

policies: $(BIN)/.installed
	$(BIN)/rollguard policy check policies/

# Every test not marked slow (pyproject.toml's markers): the unit tests and the template's own checks, in seconds.
unit: $(BIN)/.installed
	$(BIN)/pytest -m "not slow"

# The handlers on the sandbox (moto), the real state machine, the sandbox's contracts with AWS, and the drills (their
# HTML report is checked in headless Chromium).
integration: $(BIN)/.installed chromium
	$(BIN)/pytest tests/functional tests/statemachine tests/sandbox tests/drills

# template.yaml: its structure, IAM and dashboard, sam validate, cfn-lint and checkov (each in its own environment).
template: $(BIN)/.installed $(TOOLS)/bin/.installed $(CHECKOV)/bin/.installed-$(CHECKOV_VERSION)
	ROLLGUARD_TOOLS_BIN=$(CURDIR)/$(TOOLS)/bin ROLLGUARD_CHECKOV_BIN=$(CURDIR)/$(CHECKOV)/bin $(BIN)/pytest tests/template

test: $(BIN)/.installed $(TOOLS)/bin/.installed $(CHECKOV)/bin/.installed-$(CHECKOV_VERSION) chromium lint typecheck policies
	ROLLGUARD_TOOLS_BIN=$(CURDIR)/$(TOOLS)/bin ROLLGUARD_CHECKOV_BIN=$(CURDIR)/$(CHECKOV)/bin $(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/python bench/run.py
	$(BIN)/python bench/policy_check.py
	$(BIN)/python bench/backtest.py

build: $(TOOLS)/bin/.installed $(BIN)/.installed
	PATH=$(CURDIR)/$(BIN):$$PATH $(TOOLS)/bin/sam build

clean:
	rm -rf $(VENV) $(TOOLS) $(CHECKOV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
