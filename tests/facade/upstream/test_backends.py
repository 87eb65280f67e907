"""The facade's side of a rollout: it follows the supervisor's state and lets an old server go when done."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
import respx
from prometheus_client import REGISTRY

from facade.drift import DriftMonitor
from facade.service import PredictionService
from facade.upstream.backends import Role, ScoringBackends
from facade.upstream.breaker import CircuitBreaker
from facade.upstream.registry import RegistryClient
from facade.upstream.scoring import ScoringClient
from tests.facade.facade_fakes import (
    APPROVED,
    RUN_1,
    RUN_V2,
    SCORING_URL,
    SUPERVISOR_URL,
    TRACKING_URI,
    V1,
    V1_URL,
    V2,
    V2_URL,
    FakeSupervisor,
    fake_model,
    search_versions,
)


class Connections:
    """The ``connect`` of the app, recording every HTTP client it made, by URL."""

    def __init__(self) -> None:
        self.made: dict[str, list[httpx.AsyncClient]] = {}

    def __call__(self, url: str, role: Role) -> tuple[ScoringClient, httpx.AsyncClient]:
        http = httpx.AsyncClient(base_url=url)
        self.made.setdefault(url, []).append(http)
        return ScoringClient(http, CircuitBreaker(5, 2.0), 1, name=role), http


def _fallback() -> ScoringClient:
    return ScoringClient(httpx.AsyncClient(base_url=SCORING_URL), CircuitBreaker(5, 2.0), 1)


def _router(supervisor: FakeSupervisor) -> respx.MockRouter:
    router = respx.mock(assert_all_called=False)
    router.get(f"{SUPERVISOR_URL}/state", name="state").mock(side_effect=supervisor)
    router.post(f"{SCORING_URL}/invocations", name="stable").mock(side_effect=fake_model(RUN_1))
    router.post(f"{V1_URL}/invocations", name="v1").mock(side_effect=fake_model(RUN_1))
    router.post(f"{V2_URL}/invocations", name="v2").mock(side_effect=fake_model(RUN_V2))
    return router


async def _backends(supervisor_http: httpx.AsyncClient, connections: Connections) -> ScoringBackends:
    # NB: a poll period longer than any test: each test reads the state when it means to.
    backends = ScoringBackends(_fallback(), connections, supervisor_http, poll_seconds=60)
    await backends.start()
    return backends


def test_new_calls_go_to_the_new_champion_once_the_state_names_it() -> None:
    supervisor = FakeSupervisor()
    supervisor.serve(champion=V1)

    async def scenario() -> tuple[str, str]:
        async with httpx.AsyncClient(base_url=SUPERVISOR_URL) as http:
            backends = await _backends(http, Connections())
            before = (await backends.champion.predict([APPROVED]))[0].model_run_id
            supervisor.serve(champion=V2)
            await backends.refresh()
            after = (await backends.champion.predict([APPROVED]))[0].model_run_id
            await backends.stop()
            return before, after

    with _router(supervisor) as router:
        before, after = asyncio.run(scenario())
        calls = {name: router[name].call_count for name in ("v1", "v2", "stable")}

    assert (before, after) == (RUN_1, RUN_V2)
    assert calls == {"v1": 1, "v2": 1, "stable": 0}, "the stable forwarded port is not on the hot path"


def test_the_old_server_is_reported_in_use_until_its_calls_in_flight_finish() -> None:
    supervisor = FakeSupervisor()
    supervisor.serve(champion=V1)
    release = asyncio.Event()
    connections = Connections()

    async def slow_v1(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return fake_model(RUN_1)(request)

    async def scenario() -> tuple[str, list[set[str]]]:
        async with httpx.AsyncClient(base_url=SUPERVISOR_URL) as http:
            backends = await _backends(http, connections)
            in_flight = asyncio.create_task(backends.champion.predict([APPROVED]))
            await asyncio.sleep(0.01)
            supervisor.serve(champion=V2)
            await backends.refresh()  # reports v1, learns of v2
            await backends.refresh()  # reports both: v1 still has a call in flight
            release.set()
            answered = (await in_flight)[0].model_run_id
            await asyncio.sleep(0.01)
            await backends.refresh()  # reports v2 only: v1's client is closed
            assert connections.made[V1_URL][0].is_closed
            await backends.stop()
            return answered, supervisor.reports

    with _router(supervisor) as router:
        router["v1"].mock(side_effect=slow_v1)
        answered, reports = asyncio.run(scenario())

    assert answered == RUN_1, "the call in flight to the old server finished there"
    assert reports == [set(), {V1_URL}, {V1_URL, V2_URL}, {V2_URL}]


def test_a_failed_connection_reads_the_state_again_before_failing() -> None:
    """The old server was stopped before this facade's next poll: the call goes to the new one."""
    supervisor = FakeSupervisor()
    supervisor.serve(champion=V1)

    async def scenario() -> str:
        async with (
            httpx.AsyncClient(base_url=SUPERVISOR_URL) as http,
            httpx.AsyncClient(base_url=TRACKING_URI) as registry_http,
        ):
            backends = await _backends(http, Connections())
            registry = RegistryClient(registry_http, "credit-score")
            service = PredictionService(backends, registry, DriftMonitor(registry, 10, 5), None)
            supervisor.serve(champion=V2)  # NB: published; this facade has not polled yet
            scored = await service.score([APPROVED])
            await backends.stop()
            return scored.model_version

    with _router(supervisor) as router:
        router.get(f"{TRACKING_URI}/api/2.0/mlflow/model-versions/search").mock(side_effect=search_versions)
        router["v1"].mock(side_effect=httpx.ConnectError("refused"))
        version = asyncio.run(scenario())
        new_calls = router["v2"].call_count

    assert version == "2"
    assert new_calls == 1


def test_an_unreadable_supervisor_keeps_the_last_state() -> None:
    supervisor = FakeSupervisor()
    supervisor.serve(champion=V1)

    async def scenario() -> str:
        async with httpx.AsyncClient(base_url=SUPERVISOR_URL) as http:
            backends = await _backends(http, Connections())
            supervisor.status = 503
            await backends.refresh()
            run_id: str = (await backends.champion.predict([APPROVED]))[0].model_run_id
            await backends.stop()
            return run_id

    with _router(supervisor):
        assert asyncio.run(scenario()) == RUN_1


def test_the_stable_address_is_called_until_a_champion_is_published() -> None:
    supervisor = FakeSupervisor()
    supervisor.serve(champion=None)

    async def scenario() -> tuple[bool, bool]:
        async with httpx.AsyncClient(base_url=SUPERVISOR_URL) as http:
            backends = await _backends(http, Connections())
            before = backends.champion is backends.fallback
            supervisor.serve(champion=V1)
            await backends.refresh()
            after = backends.champion is backends.fallback
            await backends.stop()
            return before, after

    with _router(supervisor):
        assert asyncio.run(scenario()) == (True, False)


def test_without_a_supervisor_the_facade_calls_scoring_url_only() -> None:
    async def scenario() -> tuple[bool, bool]:
        backends = ScoringBackends(_fallback(), Connections())
        await backends.start()
        moved = await backends.moved_from(backends.champion)
        return backends.champion is backends.fallback, moved

    assert asyncio.run(scenario()) == (True, False)


def test_an_unreadable_state_is_logged_without_quoting_the_supervisors_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """pydantic's ValidationError is a ValueError whose text quotes the input: only where and why named."""
    secret = "Bearer-s3cr3t-from-the-body"
    supervisor = FakeSupervisor()
    supervisor.serve(champion={**V1, "version": {"token": secret}})
    del supervisor.state["model_name"]

    async def scenario() -> bool:
        async with httpx.AsyncClient(base_url=SUPERVISOR_URL) as http:
            backends = await _backends(http, Connections())
            on_fallback = backends.champion is backends.fallback
            await backends.stop()
            return on_fallback

    with _router(supervisor), caplog.at_level(logging.WARNING, logger="facade.upstream.backends"):
        on_fallback = asyncio.run(scenario())

    (line,) = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert secret not in caplog.text
    assert "ValidationError at " in line
    assert "model_name: missing" in line, "the field and the rule are named"
    assert "champion.version: string_type" in line
    assert on_fallback, "no state was read: the stable address is called"


def _supervisor_errors() -> float:
    return REGISTRY.get_sample_value("upstream_errors_total", {"kind": "supervisor"}) or 0.0


def test_a_state_whose_client_cannot_be_made_keeps_the_last_state_and_raises_into_no_request() -> None:
    supervisor = FakeSupervisor()
    supervisor.serve(champion=V1)
    connections = Connections()

    def connect(url: str, role: Role) -> tuple[ScoringClient, httpx.AsyncClient]:
        if url == V2_URL and refused:
            raise ValueError("no client for it")
        return connections(url, role)

    refused = True

    async def scenario() -> tuple[str, str, float]:
        async with httpx.AsyncClient(base_url=SUPERVISOR_URL) as http:
            backends = ScoringBackends(_fallback(), connect, http, poll_seconds=60)
            await backends.start()
            before = _supervisor_errors()
            supervisor.serve(champion=V2, challenger=V1)
            moved = await backends.moved_from(backends.champion)  # what a failed call does
            kept = (await backends.champion.predict([APPROVED]))[0].model_run_id
            counted = _supervisor_errors() - before
            nonlocal refused
            refused = False
            await backends.refresh()
            followed = (await backends.champion.predict([APPROVED]))[0].model_run_id
            await backends.stop()
            assert moved is False
            return kept, followed, counted

    with _router(supervisor):
        kept, followed, counted = asyncio.run(scenario())

    assert kept == RUN_1, "the last state applied stays in force"
    assert counted == 1
    assert followed == RUN_V2


def test_the_poller_outlives_an_unexpected_error(monkeypatch: pytest.MonkeyPatch) -> None:
    supervisor = FakeSupervisor()
    supervisor.serve(champion=V1)
    failures = [RuntimeError("a bug")]

    async def scenario() -> tuple[str, float]:
        async with httpx.AsyncClient(base_url=SUPERVISOR_URL) as http:
            backends = ScoringBackends(_fallback(), Connections(), http, poll_seconds=0.01)
            await backends.start()
            fetch = backends._fetch

            async def fetch_with_a_bug(client: httpx.AsyncClient) -> None:
                if failures:
                    raise failures.pop()
                await fetch(client)

            monkeypatch.setattr(backends, "_fetch", fetch_with_a_bug)
            before = _supervisor_errors()
            supervisor.serve(champion=V2)
            for _ in range(500):  # NB: 5 s at most
                champion = backends.state.champion if backends.state is not None else None
                if champion is not None and champion.version == "2":
                    break
                await asyncio.sleep(0.01)
            run_id = (await backends.champion.predict([APPROVED]))[0].model_run_id
            counted = _supervisor_errors() - before
            await backends.stop()
            return run_id, counted

    with _router(supervisor):
        run_id, counted = asyncio.run(scenario())

    assert failures == [], "the bug was hit"
    assert run_id == RUN_V2, "the poll after the bug followed the new champion"
    assert counted == 1
