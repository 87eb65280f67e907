"""The supervisor's own port: its state, the facades' reports, health and metrics."""

from __future__ import annotations

import time
from typing import Any

import pytest
import respx
from starlette.testclient import TestClient

from scripts.processes import free_port
from serving.app import create_app
from serving.config import Settings
from serving.supervisor import Supervisor

TRACKING = "http://mlflow.test"


def _client(**settings: Any) -> TestClient:
    config = Settings(
        MLFLOW_TRACKING_URI=TRACKING, SCORING_PORT=free_port(), SUPERVISOR_PORT=free_port(), **settings
    )
    return TestClient(create_app(config, {}))


def test_state_health_and_metrics_before_any_champion_exists() -> None:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{TRACKING}/api/2.0/mlflow/registered-models/alias").respond(
            404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"}
        )
        with _client() as client:
            state = client.get("/state")
            health = client.get("/health")
            metrics = client.get("/metrics")

    assert state.status_code == 200
    assert state.json()["champion"] is None
    assert state.json()["model_name"] == "credit-score"
    assert health.json() == {"status": "ok", "champion": None, "challenger": None}
    assert 'credit_model_rollouts_total{alias="champion",outcome="gate_failed"}' in metrics.text


def test_a_facade_report_is_recorded_and_a_malformed_one_refused() -> None:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{TRACKING}/api/2.0/mlflow/registered-models/alias").respond(
            404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"}
        )
        with _client() as client:
            good = client.get("/state", params={"client": "facade-1", "using": "http://a:1,http://b:2"})
            bad = client.get("/state", params={"client": "no spaces allowed", "using": ""})
            too_many = client.get(
                "/state", params={"client": "facade-2", "using": ",".join(["http://x:1"] * 17)}
            )
            reports = dict(client.app.state.supervisor._reports)  # type: ignore[attr-defined]

    assert good.status_code == 200
    assert (bad.status_code, too_many.status_code) == (400, 400)
    assert set(reports) == {"facade-1"}
    assert reports["facade-1"].using == {"http://a:1", "http://b:2"}


def test_health_is_503_naming_the_loop_while_following_fails_and_200_once_it_works_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = [True]
    follow = Supervisor.follow

    async def buggy_follow(self: Supervisor, alias: str) -> None:
        if broken[0]:
            raise RuntimeError("a bug")
        await follow(self, alias)

    monkeypatch.setattr(Supervisor, "follow", buggy_follow)

    def health_until(client: TestClient, status: int) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while (response := client.get("/health")).status_code != status:
            assert time.monotonic() < deadline, f"/health never answered {status}: {response.json()}"
            time.sleep(0.02)
        body: dict[str, Any] = response.json()
        return body

    with respx.mock(assert_all_called=False) as router:
        router.get(f"{TRACKING}/api/2.0/mlflow/registered-models/alias").respond(
            404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"}
        )
        with _client(ROLLOUT_POLL_SECONDS=0.05) as client:
            failing = health_until(client, 503)
            broken[0] = False
            healthy = health_until(client, 200)

    assert failing["status"] == "failing"
    (problem,) = failing["problems"]
    assert problem.startswith("follow-champion failed ")
    assert problem.endswith("(RuntimeError); what is served keeps serving")
    assert healthy == {"status": "ok", "champion": None, "challenger": None}, "a missing alias is no problem"
