# carebot — two commands: `make run` (demo against a throwaway Synapse) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
INTEROP := tests/interop
INTEROP_STAMP := $(INTEROP)/node_modules/.installed-stamp
FHIR_SERVER := tests/fhir
FHIR_STAMP := $(FHIR_SERVER)/node_modules/.installed-stamp

.PHONY: all install interop fhir-server postgres test unit run run-fhir check bench bench-element clean

all: test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# pip's notices (build-backend warnings, index locations) go to a log, shown only on failure,
	@# so that `make run` starts with the demo's login instructions, not with installer noise.
	$(PY) -m pip install --quiet --upgrade pip > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	$(PY) -m pip install --quiet -e '.[test]' >> $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	touch $(STAMP)

install: $(STAMP)

# The Element-stack peer (matrix-js-sdk + Rust crypto), installed from its own lockfile.
$(INTEROP_STAMP): $(INTEROP)/package.json $(INTEROP)/package-lock.json
	cd $(INTEROP) && npm ci --no-audit --no-fund --loglevel=error
	touch $(INTEROP_STAMP)

interop: $(if $(wildcard $(INTEROP)/package-lock.json),$(INTEROP_STAMP))

# The test FHIR R4 server (Medplum's fhir-router, in memory), installed from its own lockfile.
$(FHIR_STAMP): $(FHIR_SERVER)/package.json $(FHIR_SERVER)/package-lock.json
	cd $(FHIR_SERVER) && npm ci --no-audit --no-fund --loglevel=error
	touch $(FHIR_STAMP)

fhir-server: $(FHIR_STAMP)

# PostgreSQL's server programs, for the store and integration tests on PostgreSQL: the tests
# start their own throwaway cluster (bot/db/devpg.py); only the programs must be installed.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { echo "installing Debian's postgresql (server programs for the tests)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

test: install interop fhir-server postgres
	$(PY) -m pytest -q -p no:cacheprovider

unit: install postgres
	$(PY) -m pytest -q -m "not integration and not interop and not fhir"

run: install
	$(VENV)/bin/carebot demo --dir .dev

# The same demo with the roster read from a throwaway FHIR server and requests mirrored as Tasks.
run-fhir: install fhir-server
	$(VENV)/bin/carebot demo --dir .dev-fhir --fhir

bench: install
	$(PY) -m bench.run

# carebot's `!aide` round trip vs the bare nio echo bot, with Element's stack (matrix-js-sdk +
# Rust crypto) as the patient; ARGS e.g. "--rounds 200 --isolation both".
bench-element: install interop
	$(PY) -m bench.element $(ARGS)

clean:
	rm -rf .dev .dev-fhir data build *.egg-info
