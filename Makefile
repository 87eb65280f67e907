# Local development: `make run` starts the stack, `make test` runs every test, `make lint` checks the code
# (CI runs both).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell $(PYTHON) -c 'import hashlib,sys;print(hashlib.sha1(open("pyproject.toml","rb").read()).hexdigest()[:12])')

.PHONY: install run test lint format clean bench bench-spark bench-rollout loadtest

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[model,server,serving,facade,spark,dev]"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

run: install
	$(PY) -m scripts.run_stack

# NB: --cov reads its packages (model_code, training, facade) from pyproject.toml's [tool.coverage.run].
test: install
	$(PY) -m pytest --cov --cov-report=term $(PYTEST_ARGS)

# The facade against the raw MLflow scoring server and the serving peers, side by side (the peers'
# venvs are made on first use and cached); BENCH_ARGS="--json bench.json" keeps it, "--peers none" skips them.
bench: install
	$(PY) -m scripts.bench $(BENCH_ARGS)

# A champion rollout under load (time to the new version's first answer, failed requests) and the
# challenger's shadow at 0.1 against none at 32 clients; BENCH_ROLLOUT_ARGS="--json rollout.json" keeps it.
bench-rollout: install
	$(PY) -m scripts.bench_rollout $(BENCH_ROLLOUT_ARGS)

# Batch scoring on Spark (local[2], 1,000,000 rows) against in-process predict of the same rows.
bench-spark: install
	$(PY) -m scripts.bench_spark $(BENCH_SPARK_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf .run mlruns .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*

loadtest: install
	$(PY) -m scripts.loadtest $(if $(URL),--url $(URL)) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) $(if $(DURATION),--duration $(DURATION)) $(if $(API_KEY),--api-key $(API_KEY))
