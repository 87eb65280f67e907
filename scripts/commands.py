"""The exact commands of the stack's processes, shared by ``make run``, the benchmark and the tests.

Compose runs the same commands in containers (docker-compose.yml); keeping them in one place is
what lets the native tests stand for the Compose topology.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from scripts.processes import PROJECT_ROOT

BIN = Path(sys.executable).parent


def venv_bin(name: str) -> str:
    """A console script of the running interpreter's environment (the project's venv)."""
    return str(BIN / name)


_STACK_OWNED = frozenset({"MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"})


def child_env(**extra: str) -> dict[str, str]:
    """Environment for the stack's processes: this venv first on PATH, MLflow's job runner off.

    NB: `mlflow run --env-manager local` runs `python -m training.main` from PATH, so the venv must
    come first; the job runner and its huey consumers would cost about 3 GB of memory. The stack
    names its tracking server and experiment itself: an inherited MLFLOW_EXPERIMENT_ID (which
    ``mlflow.set_experiment`` leaves in a process's environment) would make `mlflow run
    --experiment-name` refuse to start.
    """
    env = {k: v for k, v in os.environ.items() if k not in _STACK_OWNED}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.update(extra)
    return env


def tracking_server(
    backend_store_uri: str, artifacts: Path, host: str, port: int, metrics_dir: Path | None = None
) -> list[str]:
    """`mlflow server` with served artifacts and one worker; /metrics when ``metrics_dir`` is given."""
    argv = [
        venv_bin("mlflow"), "server",
        "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", str(artifacts),
        "--serve-artifacts",
        "--host", host, "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    if metrics_dir is not None:
        argv += ["--expose-prometheus", str(metrics_dir)]
    return argv


def project_run(*params: str, experiment: str | None = None, entry_point: str = "main") -> list[str]:
    """`mlflow run . --env-manager local` of ``entry_point`` with ``-P name=value`` parameters."""
    argv = [venv_bin("mlflow"), "run", str(PROJECT_ROOT), "--env-manager", "local", "-e", entry_point]
    if experiment is not None:
        argv += ["--experiment-name", experiment]
    for param in params:
        argv += ["-P", param]
    return argv


def model_server(model_uri: str, host: str, port: int) -> list[str]:
    """`mlflow models serve` of ``model_uri`` in the current environment."""
    return [
        venv_bin("mlflow"), "models", "serve", "-m", model_uri,
        "--env-manager", "local", "-h", host, "-p", str(port),
    ]  # fmt: skip


def serving_supervisor() -> list[str]:
    """The serving supervisor (reads MLFLOW_TRACKING_URI, MODEL_NAME, SCORING_PORT... from the environment).

    NB: the `mlflow models serve` command of each version it starts is ``serving.servers.serve_command``.
    """
    return [sys.executable, "-m", "serving"]


def facade() -> list[str]:
    """The FastAPI facade (reads HOST, PORT, SCORING_URL, MLFLOW_TRACKING_URI... from the environment)."""
    return [sys.executable, "-m", "facade"]
