# Images of the Compose stack, one Dockerfile with two final targets:
#   facade  the FastAPI facade (`python -m facade`): only the `facade` extra, no mlflow, pandas or
#           scikit-learn (the facade never imports them)
#   mlflow  mlflow 3.17.2 with the `model`, `server` and `serving` extras (the PostgreSQL driver,
#           the tracking server's Prometheus exporter, the serving supervisor's few packages): the
#           tracking server, the `mlflow run .` training job and the serving supervisor (which runs
#           `mlflow models serve`) all run from it
# Build one with `docker build --target facade -t credit-score-api .` (Compose builds both;
# `python -m scripts.containers images` builds both with buildah, see the README).
#
# NB: only instructions the classic builder understands (no RUN --mount, COPY --chmod or
# heredocs): Debian's docker-compose v1 builds without BuildKit.
# NB: the base is pinned by tag; pin it by digest too once the digest of the image you trust is
# known (`FROM python:3.11.7-slim-bookworm@sha256:...`).

# ---------------------------------------------------------------------------------------------
FROM python:3.11.7-slim-bookworm AS python-base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# NB: a fixed uid/gid so that files the containers write on volumes have a predictable owner.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home \
       --shell /usr/sbin/nologin app

WORKDIR /app

# ---------------------------------------------------------------------------------------------
# Resolves each image's dependencies into a prefix of its own, so that the final stages get
# site-packages and console scripts without pip's caches or the project's build files. One
# builder per image: the facade's build never waits for (or is invalidated by) the model stack.
FROM python-base AS requirements

COPY pyproject.toml ./
# NB: the requirement lists are read from pyproject.toml's extras (the one source of pins); the
# project itself is not installed: the final stages copy its sources, so the facade image gets
# only facade/ and model_code's stdlib-only modules (the schema, the reason catalogue and score
# scale, the PSI computation, the output contract, the tracking names), never training/ or the
# pyfunc.
RUN python -c "import tomllib; extras = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']; images = {'facade': ['facade'], 'model': ['model', 'server', 'serving']}; [open(f'/tmp/requirements-{image}.txt', 'w').write('\n'.join(r for name in names for r in extras[name]) + '\n') for image, names in images.items()]"

# NB: what no service runs is dropped from the prefix before it is copied: the packages' own
# test suites (pandas, scipy, numpy, scikit-learn, pyarrow: about 125 MB) and C, C++ and Cython
# sources and headers (about 17 MB). Byte code stays: every container start would compile it.
FROM requirements AS builder-facade
RUN pip install --prefix=/install/facade -r /tmp/requirements-facade.txt \
    && find /install -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && find /install -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.h' -o -name '*.hpp' -o -name '*.c' -o -name '*.cpp' \) -delete

FROM requirements AS builder-model
RUN pip install --prefix=/install/model -r /tmp/requirements-model.txt \
    && find /install -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && find /install -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.h' -o -name '*.hpp' -o -name '*.c' -o -name '*.cpp' \) -delete

# ---------------------------------------------------------------------------------------------
FROM python-base AS facade

COPY --from=builder-facade /install/facade /usr/local
# NB: sources stay owned by root: the service user can read them but not change them.
COPY model_code/__init__.py model_code/schema.py model_code/reasons.py model_code/drift.py model_code/contract.py model_code/tracking.py model_code/rollout.py model_code/
COPY facade/ facade/

# NB: the facade defaults to 127.0.0.1 for `make run`; inside a container it must listen on
# every interface to be reachable through the published port and the Compose network.
ENV HOST=0.0.0.0 \
    PORT=8000

USER app
EXPOSE 8000

# NB: readiness, not liveness: healthy means the model is served and scores (a dependent
# container then starts only once predictions can succeed). slim has no curl: urllib raises on
# any non-2xx status or connection error, which makes the check fail.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/api/v1/health/ready\", timeout=4)"]

# NB: `python -m facade` runs one uvicorn worker (more add latency); scale by containers.
CMD ["python", "-m", "facade"]

# ---------------------------------------------------------------------------------------------
FROM python-base AS mlflow

COPY --from=builder-model /install/model /usr/local
# What `mlflow run .` needs: the MLproject, its environment file and the code it runs.
COPY MLproject conda.yaml pyproject.toml ./
COPY model_code/ model_code/
COPY training/ training/
COPY serving/ serving/

# NB: the sources stay root-owned and read-only; the service user may write only where it must:
# data/ (the `generate_data` entry point's default output) and /mlartifacts (the tracking
# server's artifact store; a new named volume mounted there inherits this ownership).
RUN mkdir -p /app/data /mlartifacts \
    && chown app:app /app/data /mlartifacts

# NB: `mlflow server` otherwise starts a job runner and huey consumers (about 3 GB of RAM
# instead of about 500 MB, measured); the stack does not use server-side jobs.
# GIT_PYTHON_REFRESH: the image has neither git nor a checkout, so MLflow's probe for a commit
# to record would print a page of warnings at every `mlflow run`.
ENV MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    GIT_PYTHON_REFRESH=quiet

USER app
EXPOSE 5001 5002 5003

# NB: suits the tracking server (the default command); Compose overrides it for the serving
# supervisor (/ping on 5002, answered once a champion is served) and disables it for the training job.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5001/health', timeout=4)"]

# A throwaway tracking server on SQLite inside the container; Compose runs it on PostgreSQL.
CMD ["mlflow", "server", "--backend-store-uri", "sqlite:////home/app/mlflow.db", \
     "--artifacts-destination", "/mlartifacts", "--serve-artifacts", \
     "--host", "0.0.0.0", "--port", "5001", "--workers", "1"]
