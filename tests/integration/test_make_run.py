"""`make run` as a user runs it: one command to a ready API, a prediction, a new champion served without a
restart, then Ctrl-C leaves nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from model_code.schema import EXAMPLE_APPLICANTS
from scripts import commands
from scripts.processes import ManagedProcess, free_port, group_members, port_is_free
from tests.conftest import project_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed"),
]


def _started_pids(log: Path) -> list[int]:
    return [int(pid) for pid in re.findall(r"started \S+ \(pid (\d+)\)", log.read_text())]


def _ports() -> dict[str, int]:
    return {name: free_port() for name in ("MLFLOW_PORT", "SCORING_PORT", "SUPERVISOR_PORT", "API_PORT")}


def _version_answering(api: str) -> str:
    response = httpx.post(f"{api}/api/v1/predict", json=EXAMPLE_APPLICANTS["approved"], timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["model_version"])


def test_make_run_serves_follows_the_alias_then_ctrl_c_stops_everything(tmp_path: Path) -> None:
    ports = _ports()
    api = f"http://127.0.0.1:{ports['API_PORT']}"
    tracking = f"http://127.0.0.1:{ports['MLFLOW_PORT']}"
    env = project_env(
        RUN_DIR=str(tmp_path / "run"),
        TRAIN_ARGS="-P n_samples=3000 -P n_estimators=20",
        ROLLOUT_POLL_SECONDS="2",
        **{k: str(v) for k, v in ports.items()},
    )
    make = ManagedProcess("make-run", ["make", "--no-print-directory", "run"], tmp_path / "make.log", env=env)
    make.start()
    try:
        make.wait_http(f"{api}/api/v1/health/ready", timeout=400)
        response = httpx.post(f"{api}/api/v1/predict", json=EXAMPLE_APPLICANTS["rejected"], timeout=30)
        assert response.status_code == 200
        assert response.json()["prediction"] == "REJECTED"
        make.wait_until(lambda: "Try:" in make.log_path.read_text(), 10, "the banner")
        children = _started_pids(make.log_path)
        assert len(children) == 3  # tracking server, serving supervisor, facade

        # A data scientist trains again and moves @champion: the API follows, nobody restarts anything.
        subprocess.run(
            commands.project_run("n_samples=3000", "n_estimators=20", "seed=7"),
            cwd=tmp_path,
            env=project_env(MLFLOW_TRACKING_URI=tracking),
            check=True,
            capture_output=True,
        )
        httpx.post(
            f"{tracking}/api/2.0/mlflow/registered-models/alias",
            json={"name": "credit-score", "alias": "champion", "version": "2"},
            timeout=30,
        ).raise_for_status()
        make.wait_until(lambda: _version_answering(api) == "2", 300, "answers from version 2")
        served = httpx.get(f"http://127.0.0.1:{ports['SUPERVISOR_PORT']}/state", timeout=30).json()[
            "champion"
        ]
        assert served["version"] == "2"

        make.interrupt()  # what Ctrl-C in the terminal sends to the foreground group
        make.process.wait(timeout=60)  # type: ignore[union-attr]
    finally:
        make.stop()

    log = make.log_path.read_text()
    assert "all processes stopped" in log
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(group_members(pid) for pid in children):
        time.sleep(0.2)
    assert [pid for pid in children if group_members(pid)] == []
    assert group_members(served["pid"]) == [], "the supervisor stopped the scoring server it started"
    assert all(port_is_free("127.0.0.1", port) for port in ports.values())
    assert (tmp_path / "run" / "mlflow.db").exists(), "the trained model is kept for the next run"


def test_make_run_reuses_the_trained_model(tmp_path: Path) -> None:
    """A second start finds the champion and does not train again."""
    run_dir = tmp_path / "run"
    for attempt in range(2):
        ports = _ports()
        env = project_env(
            RUN_DIR=str(run_dir),
            TRAIN_ARGS="-P n_samples=2000 -P n_estimators=10",
            **{k: str(v) for k, v in ports.items()},
        )
        make = ManagedProcess(
            "make-run", ["make", "--no-print-directory", "run"], tmp_path / f"make{attempt}.log", env=env
        )
        make.start()
        try:
            make.wait_http(f"http://127.0.0.1:{ports['API_PORT']}/api/v1/health/ready", timeout=400)
        finally:
            make.interrupt()
            make.wait_until(lambda m=make: not m.running(), 60, "exit after Ctrl-C")  # type: ignore[misc]
            make.stop()
    assert "training with `mlflow run .`" in (tmp_path / "make0.log").read_text()
    second = (tmp_path / "make1.log").read_text()
    assert "reusing models:/credit-score@champion" in second
    assert "training with" not in second
