"""The supervisor's own port: its state, the facades' reports, health and metrics."""

from __future__ import annotations

import respx
from starlette.testclient import TestClient

from scripts.processes import free_port
from serving.app import create_app
from serving.config import Settings

TRACKING = "http://mlflow.test"


def _client() -> TestClient:
    settings = Settings(MLFLOW_TRACKING_URI=TRACKING, SCORING_PORT=free_port(), SUPERVISOR_PORT=free_port())
    return TestClient(create_app(settings, {}))


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
