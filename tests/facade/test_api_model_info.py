"""GET /api/v1/model/info: the version served now, its run's test metrics, threshold and features."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import respx
from fastapi.testclient import TestClient

from facade.core.config import Settings
from facade.main import create_app
from model_code.schema import FEATURE_NAMES
from tests.facade.facade_fakes import (
    RUN_1,
    RUN_2,
    RUN_V2,
    SCORING_URL,
    SUPERVISOR_URL,
    TRACKING_URI,
    V2,
    V2_URL,
    FakeSupervisor,
    fake_model,
    rollout,
)


def test_model_info_describes_the_served_version(client: TestClient, upstream: respx.MockRouter) -> None:
    response = client.get("/api/v1/model/info")

    assert response.status_code == 200
    info = response.json()
    assert info["name"] == "credit-score"
    assert info["alias"] == "champion"
    assert info["version"] == "1"
    assert info["run_id"] == RUN_1
    assert info["metrics"] == {"roc_auc": 0.91, "f1": 0.8}
    assert info["decision_threshold"] == 0.45
    assert [f["name"] for f in info["features"]] == list(FEATURE_NAMES)
    age = info["features"][0]
    assert age == {
        "name": "age",
        "type": "integer",
        "description": "Applicant age in years.",
        "minimum": 18,
        "maximum": 100,
        "categories": None,
        "unit": "years",
    }
    assert "MORTGAGE" in info["features"][FEATURE_NAMES.index("home_ownership")]["categories"]
    assert datetime.fromisoformat(info["loaded_at"]).utcoffset() == timedelta(0)
    assert upstream["run"].calls.last.request.url.params["run_id"] == RUN_1


def test_loaded_at_is_when_a_version_was_first_seen(client: TestClient, upstream: respx.MockRouter) -> None:
    first = client.get("/api/v1/model/info").json()
    again = client.get("/api/v1/model/info").json()
    upstream["invocations"].mock(side_effect=fake_model(RUN_2))
    switched = client.get("/api/v1/model/info").json()

    assert again["loaded_at"] == first["loaded_at"]
    assert switched["version"] == "3"
    assert switched["loaded_at"] > first["loaded_at"]


def test_model_info_is_503_when_the_registry_fails(client: TestClient, upstream: respx.MockRouter) -> None:
    upstream["run"].mock(return_value=httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"}))

    response = client.get("/api/v1/model/info")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


def test_model_info_shows_the_latest_rollout_as_the_supervisor_reports_it(upstream: respx.MockRouter) -> None:
    supervisor = FakeSupervisor()
    reason = (
        "version 3 failed the gate: it decided the README's approved applicant REJECTED, not APPROVED; "
        "version 2 keeps serving"
    )
    supervisor.serve(champion=V2, latest=rollout("3", "2", "failed", reason))
    upstream.get(f"{SUPERVISOR_URL}/state").mock(side_effect=supervisor)
    upstream.get(f"{V2_URL}/ping").respond(200, text="\n")
    upstream.post(f"{V2_URL}/invocations").mock(side_effect=fake_model(RUN_V2))
    settings = Settings(
        SCORING_URL=SCORING_URL, MLFLOW_TRACKING_URI=TRACKING_URI, SUPERVISOR_URL=SUPERVISOR_URL
    )

    with TestClient(create_app(settings)) as client:
        info = client.get("/api/v1/model/info").json()

    assert info["version"] == "2", "the version answering, not the one the alias names"
    assert info["rollout"]["state"] == "failed"
    assert (info["rollout"]["version"], info["rollout"]["previous_version"]) == ("3", "2")
    assert info["rollout"]["reason"] == reason
    assert info["challenger"] is None


def test_model_info_has_no_rollout_without_a_supervisor(client: TestClient) -> None:
    info = client.get("/api/v1/model/info").json()

    assert info["rollout"] is None
    assert info["challenger"] is None
