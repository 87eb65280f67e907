# Local development: `make run` starts the stack, `make test` runs every test (CI runs it too).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell $(PYTHON) -c 'import hashlib,sys;print(hashlib.sha1(open("pyproject.toml","rb").read()).hexdigest()[:12])')

.PHONY: install run test lint format clean bench loadtest

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[model,server,facade,dev]"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

run: install
	$(PY) -m scripts.run_stack

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The facade against the raw MLflow scoring server and the serving peers, side by side (the peers'
# venvs are made on first use and cached); BENCH_ARGS="--json bench.json" keeps it, "--peers none" skips them.
bench: install
	$(PY) -m scripts.bench $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf .run mlruns .pytest_cache .mypy_cache .ruff_cache

loadtest: install
	$(PY) -m scripts.loadtest $(if $(URL),--url $(URL)) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) $(if $(DURATION),--duration $(DURATION)) $(if $(API_KEY),--api-key $(API_KEY))
