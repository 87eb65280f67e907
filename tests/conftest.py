"""Shared fixtures: an in-process trained pipeline, and a real `mlflow run .` into a temporary store."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts import commands

# Small but real: enough rows and trees for stable behavioural checks, fast on two cores.
TEST_N_SAMPLES = 6000
TEST_N_ESTIMATORS = 40


project_env = commands.child_env


def pytest_configure(config: pytest.Config) -> None:
    # NB: the tests press Ctrl-C by sending SIGINT to a stack's process group, and a process
    # started with SIGINT ignored keeps it ignored (Python installs its handler only over the
    # default), as do its children. A session launched in the background of a script (`cmd &`)
    # starts that way; restoring the default here lets what the tests start see SIGINT as in a
    # terminal's foreground job.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass(frozen=True)
class TrackingStore:
    """A temporary MLflow tracking store with its own artifact folder."""

    tracking_uri: str
    root: Path
    experiment: str = "credit-score-tests"


def create_experiment(store: TrackingStore, artifact_root: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.tracking_uri)
    if client.get_experiment_by_name(store.experiment) is None:
        client.create_experiment(store.experiment, artifact_location=artifact_root.as_uri())


def mlflow_run(
    store: TrackingStore, *params: str, entry_point: str = "main"
) -> subprocess.CompletedProcess[str]:
    """`mlflow run . --env-manager local` exactly as the README has it, against ``store``."""
    result = subprocess.run(
        commands.project_run(*params, experiment=store.experiment, entry_point=entry_point),
        cwd=store.root,
        env=project_env(MLFLOW_TRACKING_URI=store.tracking_uri),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mlflow run failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.fixture(scope="session")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> TrackingStore:
    """A fresh SQLite store where `mlflow run .` trained one champion (session-wide, it takes ~15 s)."""
    root = tmp_path_factory.mktemp("sqlite-store")
    store = TrackingStore(f"sqlite:///{root / 'mlflow.db'}", root)
    create_experiment(store, root / "artifacts")
    mlflow_run(store, f"n_samples={TEST_N_SAMPLES}", f"n_estimators={TEST_N_ESTIMATORS}")
    return store


@pytest.fixture(scope="session")
def small_pipeline():  # type: ignore[no-untyped-def]
    """A pipeline fitted in-process on generated applicants, for fast behavioural tests."""
    from training.data import generate_applicants
    from training.train import build_pipeline, fit, split

    frame = generate_applicants(TEST_N_SAMPLES, seed=7)
    return fit(build_pipeline(TEST_N_ESTIMATORS, 12, 5, seed=7), split(frame, seed=7).train)
