"""Shadow scoring seen from outside: clients get the champion's answers only, whatever the challenger does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from facade.core.config import Settings
from facade.main import create_app
from facade.metrics import AGREEMENTS
from facade.shadow import Shadow
from facade.upstream.backends import Role, ScoringBackends
from facade.upstream.breaker import CircuitBreaker
from facade.upstream.registry import RegistryClient
from facade.upstream.scoring import ScoringClient
from tests.facade.facade_fakes import (
    APPROVED,
    CHALLENGER,
    CHALLENGER_URL,
    REJECTED,
    RUN_1,
    RUN_CHALLENGER,
    SCORING_URL,
    SUPERVISOR_URL,
    TRACKING_URI,
    V1,
    V1_URL,
    V2,
    FakeSupervisor,
    fake_model,
    generated_applicants,
    search_versions,
)

# NB: the challenger stand-in sees every applicant 0.5 less risky: it approves the README's rejected
# applicant (0.85 - 0.5) and agrees on the approved one.
CHALLENGER_SHIFT = -0.5


@pytest.fixture
def supervisor(upstream: respx.MockRouter) -> FakeSupervisor:
    fake = FakeSupervisor()
    fake.serve(champion=V1, challenger=CHALLENGER)
    upstream.get(f"{SUPERVISOR_URL}/state", name="state").mock(side_effect=fake)
    upstream.get(f"{V1_URL}/ping").respond(200, text="\n")
    upstream.post(f"{V1_URL}/invocations", name="v1").mock(side_effect=fake_model(RUN_1))
    upstream.post(f"{CHALLENGER_URL}/invocations", name="challenger").mock(
        side_effect=fake_model(RUN_CHALLENGER, shift=CHALLENGER_SHIFT)
    )
    return fake


def _client(rate: float, **extra: Any) -> TestClient:
    settings = Settings(
        SCORING_URL=SCORING_URL,
        MLFLOW_TRACKING_URI=TRACKING_URI,
        SUPERVISOR_URL=SUPERVISOR_URL,
        SUPERVISOR_POLL_SECONDS=5,
        SHADOW_SAMPLE_RATE=rate,
        MAX_BATCH_SIZE=100,
        **extra,
    )
    return TestClient(create_app(settings))


@pytest.fixture
def shadowed(supervisor: FakeSupervisor) -> Iterator[TestClient]:
    with _client(1.0) as client:
        yield client


class Counts:
    """The shadow's counters now, to compare with later."""

    def __init__(self) -> None:
        def value(name: str, **labels: str) -> float:
            return REGISTRY.get_sample_value(name, labels) or 0.0

        self.sampled = value("credit_shadow_sampled_total")
        self.agreement = {a: value("credit_shadow_comparisons_total", agreement=a) for a in AGREEMENTS}
        self.dropped = value("credit_shadow_dropped_total")
        self.failed = value("credit_shadow_failed_total")
        self.deltas = value("credit_shadow_risk_delta_count")

    def since(self, before: Counts) -> dict[str, float]:
        return {
            "sampled": self.sampled - before.sampled,
            "compared": sum(self.agreement.values()) - sum(before.agreement.values()),
            "dropped": self.dropped - before.dropped,
            "failed": self.failed - before.failed,
            **{a: self.agreement[a] - before.agreement[a] for a in AGREEMENTS},
            "deltas": self.deltas - before.deltas,
        }


def settled(before: Counts, timeout: float = 10.0) -> dict[str, float]:
    """The counters' change once every sampled application is compared, dropped or failed."""
    deadline = time.monotonic() + timeout
    while True:
        delta = Counts().since(before)
        if delta["sampled"] == delta["compared"] + delta["dropped"] + delta["failed"]:
            return delta
        if time.monotonic() > deadline:
            pytest.fail(f"the shadow did not settle: {delta}")
        time.sleep(0.02)


def _answers(client: TestClient, applicants: list[dict[str, object]]) -> list[dict[str, object]]:
    """The client-visible answers, without the fields that differ on every call."""
    answers = []
    for applicant in applicants:
        response = client.post("/api/v1/predict", json=applicant)
        assert response.status_code == 200, response.text
        answers.append({k: v for k, v in response.json().items() if k not in ("application_id", "timestamp")})
    batch = client.post("/api/v1/predict/batch", json={"applications": applicants})
    assert batch.status_code == 200
    answers += [
        {k: v for k, v in p.items() if k not in ("application_id", "timestamp")}
        for p in batch.json()["predictions"]
    ]
    return answers


def test_shadow_on_and_off_give_identical_client_answers(
    supervisor: FakeSupervisor, upstream: respx.MockRouter
) -> None:
    applicants = [APPROVED, REJECTED, *generated_applicants(20, seed=3)]
    with _client(1.0) as on:
        shadow_on = _answers(on, applicants)
    with _client(0.0) as off:
        before = upstream["challenger"].call_count
        shadow_off = _answers(off, applicants)
        challenger_calls_when_off = upstream["challenger"].call_count - before

    assert shadow_on == shadow_off
    assert {answer["model_version"] for answer in shadow_on} == {"1"}, (
        "no client sees the challenger's answer"
    )
    assert challenger_calls_when_off == 0


def test_every_sampled_application_is_compared_once_and_the_counters_add_up(shadowed: TestClient) -> None:
    before = Counts()
    for applicant in (APPROVED, APPROVED, APPROVED, REJECTED, REJECTED):
        assert shadowed.post("/api/v1/predict", json=applicant).status_code == 200
    batch = shadowed.post("/api/v1/predict/batch", json={"applications": generated_applicants(10, seed=5)})
    assert batch.status_code == 200

    delta = settled(before)

    assert delta["sampled"] == 15
    assert delta["compared"] == 15
    assert delta["deltas"] == 15
    assert delta["dropped"] == delta["failed"] == 0
    assert delta["only_champion_approves"] == 0, "this challenger is never stricter"
    assert delta["only_challenger_approves"] >= 2, "it approves the README's rejected applicant"
    assert delta["same"] >= 3


def test_model_info_shows_both_versions_and_the_agreement_rate(shadowed: TestClient) -> None:
    before = Counts()
    for applicant in (APPROVED, APPROVED, APPROVED, REJECTED):
        shadowed.post("/api/v1/predict", json=applicant)
    settled(before)

    info = shadowed.get("/api/v1/model/info").json()

    assert info["version"] == "1"
    challenger = info["challenger"]
    assert (challenger["version"], challenger["run_id"]) == ("4", RUN_CHALLENGER)
    shadow = challenger["shadow"]
    assert (shadow["champion_version"], shadow["challenger_version"]) == ("1", "4")
    assert shadow["compared"] == 4
    assert shadow["agreement"] == {"same": 3, "only_champion_approves": 0, "only_challenger_approves": 1}
    assert shadow["agreement_rate"] == 0.75
    # NB: three approved applicants at 0.05 (challenger 0.01, its floor) and one rejected at 0.85 (0.35).
    assert shadow["mean_risk_delta"] == pytest.approx(((0.01 - 0.05) * 3 + (0.35 - 0.85)) / 4)
    assert shadow["sample_rate"] == 1.0


def test_about_the_sample_rate_is_sampled(supervisor: FakeSupervisor) -> None:
    before = Counts()
    with _client(0.25) as client:
        for seed in range(4):
            response = client.post(
                "/api/v1/predict/batch", json={"applications": generated_applicants(100, seed)}
            )
            assert response.status_code == 200
        delta = settled(before)

    # NB: 400 draws at 0.25: 100 expected, 8.7 standard deviations; the bounds are 4.6 of them.
    assert 60 <= delta["sampled"] <= 140
    assert delta["compared"] == delta["sampled"]


def test_a_hung_challenger_delays_and_fails_no_client_request(
    supervisor: FakeSupervisor, upstream: respx.MockRouter
) -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    upstream["challenger"].mock(side_effect=never)
    before = Counts()
    with _client(1.0, SHADOW_QUEUE_SIZE=4) as client:
        latencies, statuses = [], []
        for applicant in [APPROVED, REJECTED] * 15:
            started = time.perf_counter()
            statuses.append(client.post("/api/v1/predict", json=applicant).status_code)
            latencies.append(time.perf_counter() - started)
        delta = Counts().since(before)

    assert statuses == [200] * 30
    assert max(latencies) < 2.0, "no request waits for the challenger"
    assert delta["sampled"] == 30
    assert delta["dropped"] == 30 - 4, "four wait (one of them in the hung call); the rest are dropped"


def test_a_dead_challenger_counts_failures_and_clients_get_their_answers(
    supervisor: FakeSupervisor, upstream: respx.MockRouter
) -> None:
    upstream["challenger"].mock(side_effect=httpx.ConnectError("refused"))
    before = Counts()
    with _client(1.0) as client:
        statuses = [client.post("/api/v1/predict", json=APPROVED).status_code for _ in range(5)]
        delta = settled(before)

    assert statuses == [200] * 5
    assert delta["sampled"] == 5
    assert delta["failed"] == 5
    assert delta["compared"] == 0


def test_without_a_challenger_nothing_is_sampled(
    supervisor: FakeSupervisor, upstream: respx.MockRouter
) -> None:
    supervisor.serve(champion=V1)
    before = Counts()
    with _client(1.0) as client:
        assert client.post("/api/v1/predict", json=APPROVED).status_code == 200
        assert client.get("/api/v1/model/info").json()["challenger"] is None

    assert Counts().since(before)["sampled"] == 0
    assert upstream["challenger"].call_count == 0


def test_during_a_rollout_the_tally_shown_is_the_served_pairs_and_never_starts_over() -> None:
    """Micro-batches of the old and the new champion interleave for a while after a switch."""
    supervisor = FakeSupervisor()
    supervisor.serve(champion=V1, challenger=CHALLENGER)
    shown: list[tuple[str, str, int]] = []

    async def scenario() -> Shadow:
        async with (
            httpx.AsyncClient(base_url=SUPERVISOR_URL) as supervisor_http,
            httpx.AsyncClient(base_url=TRACKING_URI) as registry_http,
        ):

            def connect(url: str, role: Role) -> tuple[ScoringClient, httpx.AsyncClient]:
                http = httpx.AsyncClient(base_url=url)
                return ScoringClient(http, CircuitBreaker(5, 2.0), 1, name=role), http

            fallback = ScoringClient(httpx.AsyncClient(base_url=SCORING_URL), CircuitBreaker(5, 2.0), 1)
            backends = ScoringBackends(fallback, connect, supervisor_http, poll_seconds=60)
            await backends.start()
            shadow = Shadow(backends, RegistryClient(registry_http, "credit-score"), 1.0, 100, lambda: 0.0)
            shadow.start()
            applications = [APPROVED, REJECTED]
            rows = await backends.champion.predict(applications)

            async def offer(champion_version: str) -> None:
                shadow.offer(applications, rows, champion_version)
                for _ in range(500):
                    if shadow.queued == 0:
                        break
                    await asyncio.sleep(0.01)
                assert shadow.tally is not None
                tally = shadow.tally
                shown.append((tally.champion_version, tally.challenger_version, tally.compared))

            await offer("1")
            supervisor.serve(champion=V2, challenger=CHALLENGER)
            await backends.refresh()  # NB: version 2 serves; version 1's batches still come back
            for version in ("2", "1", "2", "1"):
                await offer(version)
            await shadow.stop()
            await backends.stop()
            return shadow

    with respx.mock(assert_all_called=False) as router:
        router.get(f"{SUPERVISOR_URL}/state").mock(side_effect=supervisor)
        router.post(f"{V1_URL}/invocations").mock(side_effect=fake_model(RUN_1))
        router.post(f"{CHALLENGER_URL}/invocations").mock(
            side_effect=fake_model(RUN_CHALLENGER, shift=CHALLENGER_SHIFT)
        )
        router.get(f"{TRACKING_URI}/api/2.0/mlflow/model-versions/search").mock(side_effect=search_versions)
        shadow = asyncio.run(scenario())

    assert shown == [("1", "4", 2), ("2", "4", 2), ("2", "4", 2), ("2", "4", 4), ("2", "4", 4)]
    current, old = shadow.tallies[("2", "4")], shadow.tallies[("1", "4")]
    assert current.agreement == {"same": 2, "only_champion_approves": 0, "only_challenger_approves": 2}
    assert old.compared == 2 + 2 + 2, "the old pair's comparisons are kept apart, none lost"
