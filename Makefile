# The README's two commands: `make up` runs the product, `make test` passes the tests.
# Both create .venv and install what they need on a fresh machine; reinstalls happen only
# when pyproject.toml changes (the stamp file carries its hash).

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: up test unit integration e2e lint schemas bench images clean

# The tests run on TimescaleDB (built once per machine from ../shared/vendor, see
# docs/deploy.md): a missing build fails them. NNT_TIMESCALEDB=off runs them natively.
# `make up` leaves it on auto: TimescaleDB when it can be built, else native partitioning.
test integration e2e: export NNT_TIMESCALEDB ?= on

up: $(STAMP)
	$(VENV)/bin/nntracker up --demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS) tests

unit: $(STAMP)
	$(PY) -m pytest -m unit tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

schemas: $(STAMP)
	$(PY) -m schemas export

bench: $(STAMP)
	$(PY) -m bench

# Every product image with podman or Docker (standard library only: no venv needed).
# `make images IMAGES="trainer trainer-gpu" BASE=python:3.11.13-slim-bookworm` picks them.
IMAGES ?=
BASE   ?=
images:
	$(PYTHON) -m infra.images build $(IMAGES) $(if $(BASE),--base $(BASE))

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[all,dev]"
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
