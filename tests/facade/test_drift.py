"""Drift gauges: PSI of recent traffic against the served run's reference, computed at scrape time.

The reference is the one training builds (``training.reference``) from the synthetic generator and
the fake model's risk, recorded; traffic is drawn from a recorded pool of the same generator's
applicants (another seed), or from it shifted.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from facade.core.config import Settings
from facade.drift import DriftMonitor, parse_reference
from facade.main import create_app
from facade.upstream.registry import RegistryClient
from model_code.drift import PSI_MODERATE, PSI_SIGNIFICANT, REFERENCE_ARTIFACT
from model_code.schema import FEATURE_NAMES
from tests.facade.facade_fakes import (
    RUN_1,
    RUN_2,
    TRACKING_URI,
    fake_model,
    generated_applicants,
    reference_body,
)

WINDOW = 1000
MIN_SAMPLES = 100
# NB: a value no generated applicant has, to find in logs if the window ever leaked into them.
MARKER_INCOME = 123_457.0


def applicants(n: int, seed: int) -> list[dict[str, object]]:
    return generated_applicants(n, seed)


def shifted(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Poorer, more indebted applicants with more derogatory marks than the model was trained on."""
    return [
        {
            **row,
            "income": float(row["income"]) / 2,  # type: ignore[arg-type]
            "total_debt": min(float(row["total_debt"]) * 3, 10_000_000.0),  # type: ignore[arg-type]
            "derogatory_marks": min(int(row["derogatory_marks"]) + 3, 50),  # type: ignore[call-overload]
        }
        for row in rows
    ]


@pytest.fixture
def drift_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"MAX_BATCH_SIZE": WINDOW, "DRIFT_WINDOW_SIZE": WINDOW, "DRIFT_MIN_SAMPLES": MIN_SAMPLES}
    )


@pytest.fixture
def drift_client(drift_settings: Settings, upstream: respx.MockRouter) -> Iterator[TestClient]:
    with TestClient(create_app(drift_settings)) as client:
        yield client


def score(client: TestClient, rows: list[dict[str, object]]) -> None:
    for start in range(0, len(rows), 500):
        response = client.post("/api/v1/predict/batch", json={"applications": rows[start : start + 500]})
        assert response.status_code == 200, response.text


def scrape(client: TestClient) -> tuple[dict[str, float], list[float]]:
    """``credit_feature_psi`` by feature and the ``credit_score_psi`` samples from /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    # NB: the families are declared even while they have no samples.
    assert families["credit_feature_psi"].type == "gauge"
    assert families["credit_score_psi"].type == "gauge"
    features = {s.labels["feature"]: s.value for s in families["credit_feature_psi"].samples}
    return features, [s.value for s in families["credit_score_psi"].samples]


def test_psi_is_near_zero_for_traffic_drawn_like_the_training_data(drift_client: TestClient) -> None:
    score(drift_client, applicants(WINDOW, seed=2024))

    features, (score_psi,) = scrape(drift_client)

    assert set(features) == set(FEATURE_NAMES)
    assert max(features.values()) < PSI_MODERATE / 2, features
    assert score_psi < PSI_MODERATE / 2


def test_psi_is_above_the_significant_threshold_for_shifted_traffic(drift_client: TestClient) -> None:
    score(drift_client, shifted(applicants(WINDOW, seed=2024)))

    features, (score_psi,) = scrape(drift_client)

    for name in ("income", "total_debt", "derogatory_marks"):
        assert features[name] > PSI_SIGNIFICANT, (name, features[name])
    assert features["loan_intent"] < PSI_MODERATE  # NB: untouched fields stay stable
    assert score_psi > PSI_SIGNIFICANT


def test_the_window_slides_back_to_stable_once_traffic_is_normal_again(drift_client: TestClient) -> None:
    score(drift_client, shifted(applicants(WINDOW, seed=1)))
    score(drift_client, applicants(WINDOW, seed=2))

    features, (score_psi,) = scrape(drift_client)

    assert max(features.values()) < PSI_MODERATE / 2
    assert score_psi < PSI_MODERATE / 2


def test_gauges_are_absent_below_the_minimum_window_and_the_reference_is_not_fetched(
    drift_client: TestClient, upstream: respx.MockRouter
) -> None:
    rows = applicants(MIN_SAMPLES, seed=3)
    score(drift_client, rows[:-1])

    assert scrape(drift_client) == ({}, [])
    assert upstream["artifact"].call_count == 0

    score(drift_client, rows[-1:])
    features, score_psi = scrape(drift_client)
    assert set(features) == set(FEATURE_NAMES)
    assert len(score_psi) == 1


def test_the_reference_is_fetched_once_per_run_from_the_runs_artifact_root(
    drift_client: TestClient, upstream: respx.MockRouter
) -> None:
    score(drift_client, applicants(MIN_SAMPLES, seed=4))

    for _ in range(3):
        scrape(drift_client)

    assert upstream["artifact"].call_count == 1
    params = upstream["artifact"].calls.last.request.url.params
    assert dict(params) == {"path": REFERENCE_ARTIFACT, "run_uuid": RUN_1}


def test_the_window_restarts_when_the_served_run_changes(
    drift_client: TestClient, upstream: respx.MockRouter
) -> None:
    score(drift_client, shifted(applicants(2 * MIN_SAMPLES, seed=5)))
    assert scrape(drift_client)[1][0] > PSI_SIGNIFICANT

    upstream["invocations"].mock(side_effect=fake_model(RUN_2))  # NB: serving restarted on another run
    score(drift_client, applicants(MIN_SAMPLES - 1, seed=6))
    assert scrape(drift_client) == ({}, [])  # NB: the old run's traffic is gone, the new is too short

    score(drift_client, applicants(1, seed=7))
    _, (score_psi,) = scrape(drift_client)
    assert score_psi < PSI_MODERATE
    assert upstream["artifact"].calls.last.request.url.params["run_uuid"] == RUN_2


def test_single_predictions_enter_the_window_too(drift_client: TestClient) -> None:
    for row in applicants(MIN_SAMPLES, seed=8):
        assert drift_client.post("/api/v1/predict", json=row).status_code == 200

    features, score_psi = scrape(drift_client)

    assert set(features) == set(FEATURE_NAMES)
    assert len(score_psi) == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No such artifact"}),
        httpx.Response(500, text="Internal Server Error"),
        httpx.Response(200, text="not json"),
        httpx.Response(
            200, json={"features": {}, "score": {"kind": "numeric", "edges": [], "proportions": [1]}}
        ),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
    ids=["missing", "server-error", "not-json", "no-features", "unreachable", "timeout"],
)
def test_a_reference_that_cannot_be_had_never_fails_a_prediction(
    drift_client: TestClient,
    upstream: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    failure: httpx.Response | Exception,
) -> None:
    upstream["artifact"].mock(side_effect=[failure])
    rows = [{**row, "income": MARKER_INCOME} for row in applicants(MIN_SAMPLES + 20, seed=9)]

    with caplog.at_level(logging.DEBUG):
        statuses = [drift_client.post("/api/v1/predict", json=row).status_code for row in rows[:60]]
        scrapes = [scrape(drift_client)]
        statuses += [drift_client.post("/api/v1/predict", json=row).status_code for row in rows[60:]]
        scrapes += [scrape(drift_client), scrape(drift_client)]

    assert statuses == [200] * len(rows)
    assert scrapes == [({}, [])] * 3
    assert upstream["artifact"].call_count == 1  # NB: not asked again at every scrape
    warning = next(r for r in caplog.records if r.name == "facade.drift")
    assert warning.levelno == logging.WARNING
    assert REFERENCE_ARTIFACT in warning.getMessage()
    assert str(MARKER_INCOME) not in caplog.text
    assert "123457" not in caplog.text


def test_a_failed_reference_is_asked_for_again_after_the_retry_period() -> None:
    now = [0.0]

    async def scenario() -> list[dict[str, float] | None]:
        async with httpx.AsyncClient(base_url=TRACKING_URI) as http:
            drift = DriftMonitor(
                RegistryClient(http, "credit-score"), 10, 5, retry_seconds=60, clock=lambda: now[0]
            )
            drift.observe(RUN_1, applicants(5, seed=10), [0.1] * 5)
            seen = []
            for at in (0.0, 30.0, 61.0):
                now[0] = at
                await drift.refresh()
                seen.append(drift.psi())
            return seen

    with respx.mock(base_url=TRACKING_URI) as router:
        route = router.get("/get-artifact").mock(
            side_effect=[httpx.Response(503), httpx.Response(200, content=reference_body())]
        )
        seen = asyncio.run(scenario())

    assert seen[:2] == [None, None]
    assert seen[2] is not None
    assert set(seen[2]) == {*FEATURE_NAMES, "risk_score"}
    assert route.call_count == 2


@pytest.mark.parametrize(
    "broken",
    [
        lambda ref: ref["features"].pop("income"),
        lambda ref: ref["features"]["loan_intent"].update(kind="numeric", edges=[]),
        lambda ref: ref["features"]["age"]["proportions"].pop(),
        lambda ref: ref["features"]["age"].update(edges=ref["features"]["age"]["edges"][::-1]),
        lambda ref: ref["score"]["proportions"].__setitem__(0, 1.5),
        lambda ref: ref.pop("score"),
    ],
    ids=[
        "missing-field",
        "wrong-kind",
        "bins-and-shares-disagree",
        "unsorted-edges",
        "share-over-1",
        "no-score",
    ],
)
def test_a_malformed_reference_is_refused_before_any_psi_is_computed(broken: object) -> None:
    reference = json.loads(reference_body())
    broken(reference)  # type: ignore[operator]

    with pytest.raises(ValueError, match="drift reference"):
        parse_reference(json.dumps(reference).encode())


def test_the_reference_in_training_format_is_accepted_and_keeps_only_schema_fields() -> None:
    reference = json.loads(reference_body())
    reference["features"]["favourite_colour"] = {
        "kind": "category",
        "categories": ["red"],
        "proportions": [1.0],
    }

    parsed = parse_reference(json.dumps(reference).encode())

    assert list(parsed["features"]) == list(FEATURE_NAMES)
    assert parsed["score"]["edges"] == reference["score"]["edges"]


def test_a_batch_longer_than_the_window_leaves_its_last_rows_in_it() -> None:
    # NB: the window keeps only the newest rows; a batch longer than it must leave exactly the
    # batch's tail, as if only those rows had been observed.
    old, new = shifted(applicants(WINDOW, seed=12)), applicants(WINDOW, seed=13)

    async def psi_after(batches: list[list[dict[str, object]]]) -> dict[str, float] | None:
        async with httpx.AsyncClient(base_url=TRACKING_URI) as http:
            drift = DriftMonitor(RegistryClient(http, "credit-score"), WINDOW, MIN_SAMPLES)
            for rows in batches:
                drift.observe(RUN_1, rows, [0.1] * len(rows))
            await drift.refresh()
            return drift.psi()

    with respx.mock(base_url=TRACKING_URI) as router:
        router.get("/get-artifact").mock(return_value=httpx.Response(200, content=reference_body()))
        one_batch = asyncio.run(psi_after([old + new]))
        tail_only = asyncio.run(psi_after([new]))
        shifted_only = asyncio.run(psi_after([old]))

    assert one_batch is not None
    assert one_batch == tail_only
    assert one_batch != shifted_only
