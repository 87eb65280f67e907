"""The whole flow with real servers: mlflow server ← mlflow run . → mlflow models serve ← facade.

Proves that `mlflow run .` works against a running tracking server, that the facade returns the
scoring server's own numbers, score points and reasons, that it serves the run's model card and
exports drift gauges from the run's reference, and that `model_version` follows what is actually
served when the alias moves and serving restarts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from model_code.drift import PSI_SIGNIFICANT
from model_code.schema import EXAMPLE_APPLICANTS, FEATURE_NAMES
from tests.integration.servers import Stack, sqlite_stack
from training.data import TARGET, generate_applicants

pytestmark = pytest.mark.integration

PROBABILITIES = ["approval_probability", "rejection_probability", "risk_score", "confidence"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with sqlite_stack(tmp_path_factory.mktemp("e2e"), "n_samples=4000", "n_estimators=30") as s:
        yield s


def _batch() -> list[dict[str, object]]:
    sample = generate_applicants(50, seed=2024).drop(columns=[TARGET])
    rows: list[dict[str, object]] = json.loads(sample.to_json(orient="records"))
    return [EXAMPLE_APPLICANTS["approved"], EXAMPLE_APPLICANTS["rejected"], *rows]


def test_facade_returns_the_scoring_servers_own_numbers(stack: Stack) -> None:
    applications = _batch()

    raw = httpx.post(f"{stack.scoring_url}/invocations", json={"dataframe_records": applications}, timeout=60)
    facade = httpx.post(
        f"{stack.api_url}/api/v1/predict/batch", json={"applications": applications}, timeout=60
    )

    assert raw.status_code == 200, raw.text
    assert facade.status_code == 200, facade.text
    expected = pd.DataFrame(raw.json()["predictions"])
    got = pd.DataFrame(facade.json()["predictions"])
    assert got["prediction"].tolist() == expected["prediction"].tolist()
    pd.testing.assert_frame_equal(got[PROBABILITIES], expected[PROBABILITIES], rtol=0, atol=0)
    assert got["credit_score"].tolist() == expected["credit_score"].tolist()
    assert got["reasons"].tolist() == expected["reasons"].tolist()
    assert got["model_version"].unique().tolist() == ["1"]


def test_readme_applicants_through_the_facade(stack: Stack) -> None:
    results = [
        httpx.post(f"{stack.api_url}/api/v1/predict", json=EXAMPLE_APPLICANTS[name], timeout=30).json()
        for name in ("approved", "rejected")
    ]

    assert [r["prediction"] for r in results] == ["APPROVED", "REJECTED"]
    assert {r["model_version"] for r in results} == {"1"}


@pytest.mark.parametrize("name", ["approved", "rejected"])
def test_readme_applicants_show_score_points_and_reasons_through_both_apis(stack: Stack, name: str) -> None:
    applicant = EXAMPLE_APPLICANTS[name]

    raw = httpx.post(f"{stack.scoring_url}/invocations", json={"dataframe_records": [applicant]}, timeout=30)
    public = httpx.post(f"{stack.api_url}/api/v1/predict", json=applicant, timeout=30)

    assert raw.status_code == 200, raw.text
    assert public.status_code == 200, public.text
    (expected,) = raw.json()["predictions"]
    got = public.json()
    assert got["prediction"] == expected["prediction"] == name.upper()
    assert isinstance(got["credit_score"], int)
    assert 300 <= got["credit_score"] <= 850
    assert got["credit_score"] == expected["credit_score"]
    assert got["reasons"] == expected["reasons"]
    assert len(got["reasons"]) <= 4
    if name == "rejected":
        assert got["reasons"], "a rejection always carries its principal reasons"
    contributions = [r["contribution"] for r in got["reasons"]]
    assert contributions == sorted(contributions, reverse=True)
    assert all(c > 0 for c in contributions)


def test_model_card_is_served_as_markdown(stack: Stack) -> None:
    run_id = httpx.get(f"{stack.api_url}/api/v1/model/info", timeout=30).json()["run_id"]

    response = httpx.get(f"{stack.api_url}/api/v1/model/card", timeout=30)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert "## Fairness" in response.text
    assert run_id in response.text


def test_drift_gauges_appear_after_enough_predictions(stack: Stack) -> None:
    sample = generate_applicants(120, seed=77).drop(columns=[TARGET])
    applications: list[dict[str, object]] = json.loads(sample.to_json(orient="records"))
    for start in range(0, len(applications), 10):
        httpx.post(
            f"{stack.api_url}/api/v1/predict/batch",
            json={"applications": applications[start : start + 10]},
            timeout=30,
        ).raise_for_status()

    text = httpx.get(f"{stack.api_url}/metrics", timeout=30).text

    families = {f.name: f for f in text_string_to_metric_families(text)}
    features = {s.labels["feature"]: s.value for s in families["credit_feature_psi"].samples}
    assert 'credit_feature_psi{feature="income"}' in text
    assert set(features) == set(FEATURE_NAMES)
    # NB: traffic drawn like the training data; 120 rows over 10 bins leave some sampling noise.
    assert features["income"] < PSI_SIGNIFICANT
    assert len(families["credit_score_psi"].samples) == 1


def test_model_info_describes_the_served_version(stack: Stack) -> None:
    client = MlflowClient(tracking_uri=stack.tracking_uri)
    champion = client.get_model_version_by_alias("credit-score", "champion")

    info = httpx.get(f"{stack.api_url}/api/v1/model/info", timeout=30).json()

    assert info["version"] == "1"
    assert info["run_id"] == champion.run_id
    assert info["decision_threshold"] == 0.5
    assert info["metrics"]["roc_auc"] == pytest.approx(
        client.get_run(str(champion.run_id)).data.metrics["test_roc_auc"]
    )
    assert [f["name"] for f in info["features"]][:2] == ["age", "income"]


def test_moving_the_alias_and_restarting_serving_shows_the_new_version(stack: Stack) -> None:
    client = MlflowClient(tracking_uri=stack.tracking_uri)
    # Same data and parameters: the same test AUC, so the new version wins (>=) and takes @champion.
    stack.train("n_samples=4000", "n_estimators=30")
    assert str(client.get_model_version_by_alias("credit-score", "champion").version) == "2"

    # Until serving restarts, the old model is what answers, and the facade must say so.
    still_old = httpx.post(f"{stack.api_url}/api/v1/predict", json=EXAMPLE_APPLICANTS["approved"], timeout=30)
    assert still_old.json()["model_version"] == "1"

    stack.stop_scoring()
    down = httpx.post(f"{stack.api_url}/api/v1/predict", json=EXAMPLE_APPLICANTS["approved"], timeout=30)
    assert down.status_code == 503
    assert "Retry-After" in down.headers
    assert httpx.get(f"{stack.api_url}/api/v1/health/ready", timeout=30).status_code == 503

    stack.start_scoring()
    after = httpx.post(f"{stack.api_url}/api/v1/predict", json=EXAMPLE_APPLICANTS["approved"], timeout=30)
    assert after.status_code == 200
    assert after.json()["model_version"] == "2"
    ready = httpx.get(f"{stack.api_url}/api/v1/health/ready", timeout=30)
    assert ready.status_code == 200


def test_concurrent_single_predictions_are_batched_and_equal_unbatched_calls(stack: Stack) -> None:
    applications = _batch()[:40]
    unbatched = [
        httpx.post(f"{stack.scoring_url}/invocations", json={"dataframe_records": [a]}, timeout=60).json()[
            "predictions"
        ][0]
        for a in applications
    ]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(
                *(client.post(f"{stack.api_url}/api/v1/predict", json=a) for a in applications)
            )

    before = _metric(stack, "microbatch_size_count")
    responses = asyncio.run(burst())
    calls = _metric(stack, "microbatch_size_count") - before

    assert [r.status_code for r in responses] == [200] * len(applications)
    got = pd.DataFrame([r.json() for r in responses])
    expected = pd.DataFrame(unbatched)
    assert got["prediction"].tolist() == expected["prediction"].tolist()
    pd.testing.assert_frame_equal(got[PROBABILITIES], expected[PROBABILITIES], rtol=0, atol=0)
    assert calls < len(applications), "concurrent requests should share scoring calls"


def _metric(stack: Stack, name: str) -> float:
    text = httpx.get(f"{stack.api_url}/metrics", timeout=30).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))
