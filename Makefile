# make demo: set up .venv and run the offline support-triage demo.
# make test: set up .venv and run the whole suite.   make bench: the benchmarks.
# make chaos SEED=7 TRIALS=200: the crash-injection suite (tests/chaos), beyond the bounded
#   run in make test; prints a table of trials and a summary (PostgreSQL as make test finds it).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# Tests and demos never talk to tracing back ends.
export OPENAI_AGENTS_DISABLE_TRACING := 1
export LANGSMITH_TRACING := false

SEED ?= $(shell date +%s)
TRIALS ?= 200

.PHONY: demo test bench chaos lint clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m examples.support_triage $(ARGS)

test: $(STAMP)
	$(PY) -m ruff check src tests examples bench
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

chaos: $(STAMP)
	PYTHONPATH=tests $(PY) -m chaos --seed $(SEED) --trials $(TRIALS)

lint: $(STAMP)
	$(PY) -m ruff check src tests examples bench
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .keel
