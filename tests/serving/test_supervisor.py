"""The serving supervisor's decisions, with stand-in servers: what is published, kept, drained and counted.

The real `mlflow models serve` runs in tests/integration/test_rollouts.py; here a ``FakeServer``
starts (or not) at once, and respx answers for the registry and for each server's ``/invocations``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
import respx
from prometheus_client import REGISTRY

from model_code.rollout import Backend
from scripts.processes import free_port, group_members, port_is_free
from serving.config import Settings
from serving.registry import Registry, Version
from serving.servers import ScoringServer
from serving.supervisor import CLIENT_TTL_SECONDS, Supervisor

TRACKING = "http://mlflow.test"
RUNS = {"1": "1" * 32, "2": "2" * 32, "3": "3" * 32}
# NB: version 3's model rejects everyone, as a threshold set far too low would.
DECISIONS = {"1": ("APPROVED", "REJECTED"), "2": ("APPROVED", "REJECTED"), "3": ("REJECTED", "REJECTED")}


class FakeServer:
    """Stands for ``ScoringServer``: it starts (or fails to) at once and answers as its version would."""

    next_port = 40000

    def __init__(self, version: Version, starts: bool = True) -> None:
        FakeServer.next_port += 1
        self.version, self.port, self.starts = version, FakeServer.next_port, starts
        self.local_host = "127.0.0.1"
        self.url = self.local_url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.alive = False
        self.stopped = False

    def start(self) -> FakeServer:
        self.alive = self.starts
        return self

    def running(self) -> bool:
        return self.alive

    async def wait_ready(self, within: float) -> str | None:
        return (
            None if self.starts else "its server exited with code 1 before answering /ping (the log says why)"
        )

    async def stop(self, grace: float = 8.0) -> None:
        self.alive, self.stopped = False, True

    def describe(self) -> Backend:
        return Backend(self.version.version, self.version.run_id, self.url, 1, datetime.now(UTC))


class World:
    """The registry's aliases and the servers the supervisor made, with respx answering for both."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.aliases: dict[str, str] = {}
        self.servers: list[FakeServer] = []
        self.unloadable: set[str] = set()
        router.get(f"{TRACKING}/api/2.0/mlflow/registered-models/alias").mock(side_effect=self._alias)
        router.get(f"{TRACKING}/api/2.0/mlflow/model-versions/search").mock(side_effect=self._search)
        router.post(url__regex=r"http://127\.0\.0\.1:\d+/invocations").mock(side_effect=self._invocations)

    def make(self, version: Version) -> ScoringServer:
        server = FakeServer(version, starts=version.version not in self.unloadable)
        self.servers.append(server)
        return cast(ScoringServer, server)

    def of(self, version: str) -> list[FakeServer]:
        return [s for s in self.servers if s.version.version == version]

    def _alias(self, request: httpx.Request) -> httpx.Response:
        version = self.aliases.get(request.url.params["alias"])
        if version is None:
            return httpx.Response(400, json={"error_code": "INVALID_PARAMETER_VALUE", "message": "not found"})
        return httpx.Response(
            200, json={"model_version": {"name": "credit-score", "version": version, "run_id": RUNS[version]}}
        )

    def _search(self, request: httpx.Request) -> httpx.Response:
        run_id = request.url.params["filter"].split("run_id='")[1].rstrip("'")
        found = [{"name": "credit-score", "version": v, "run_id": r} for v, r in RUNS.items() if r == run_id]
        return httpx.Response(200, json={"model_versions": found})

    def _invocations(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port
        (server,) = [s for s in self.servers if s.port == port]
        rows = json.loads(request.content)["dataframe_split"]["data"]
        decisions = DECISIONS[server.version.version]
        body = [{"prediction": decisions[i], "model_run_id": server.version.run_id} for i in range(len(rows))]
        return httpx.Response(200, json={"predictions": body})


def count(outcome: str, alias: str = "champion") -> float:
    return (
        REGISTRY.get_sample_value("credit_model_rollouts_total", {"alias": alias, "outcome": outcome}) or 0.0
    )


Scenario = Callable[[Supervisor, World], Coroutine[Any, Any, None]]


@pytest.fixture
def run() -> Callable[..., None]:
    """Run ``scenario(supervisor, world)`` on a fresh loop with the registry and servers mocked."""

    def go(scenario: Scenario, **settings: Any) -> None:
        async def main() -> None:
            with respx.mock(assert_all_called=False) as router:
                world = World(router)
                async with httpx.AsyncClient(base_url=TRACKING) as http:
                    config = Settings(MLFLOW_TRACKING_URI=TRACKING, **settings)
                    supervisor = Supervisor(config, Registry(http, "credit-score"), world.make)
                    try:
                        await scenario(supervisor, world)
                    finally:
                        await supervisor.close()

        asyncio.run(main())

    return go


async def _settle() -> None:
    """Let the drain tasks look again (they check every 0.2 s)."""
    await asyncio.sleep(0.5)


def test_a_moved_alias_is_served_once_its_server_passes_the_gate_and_the_old_one_is_stopped(
    run: Callable[..., None],
) -> None:
    async def scenario(supervisor: Supervisor, world: World) -> None:
        world.aliases["champion"] = "1"
        await supervisor.follow("champion")
        (first,) = world.of("1")
        assert supervisor.state().champion is not None
        assert supervisor.state().champion.version == "1"  # type: ignore[union-attr]

        world.aliases["champion"] = "2"
        await supervisor.follow("champion")
        state = supervisor.state()
        assert state.champion is not None
        assert state.champion.version == "2"
        assert supervisor.champion_address() == ("127.0.0.1", world.of("2")[0].port)
        rollout = state.rollouts["champion"]
        assert (rollout.state, rollout.version, rollout.previous_version) == ("completed", "2", "1")
        await _settle()
        assert first.stopped, "nobody uses version 1 any more: it is stopped"
        assert supervisor.state().draining == []

    run(scenario)


def test_the_old_server_is_kept_until_every_facade_has_let_it_go(run: Callable[..., None]) -> None:
    async def scenario(supervisor: Supervisor, world: World) -> None:
        world.aliases["champion"] = "1"
        await supervisor.follow("champion")
        (old,) = world.of("1")
        supervisor.report("facade-a", [old.url])
        supervisor.report("facade-b", [old.url])

        world.aliases["champion"] = "2"
        await supervisor.follow("champion")
        new = world.of("2")[0]
        await _settle()
        assert not old.stopped, "both facades' last reports name the old server"

        supervisor.report("facade-a", [new.url])
        supervisor.report("facade-b", [old.url, new.url])  # NB: a call in flight on the old server
        await _settle()
        assert not old.stopped

        supervisor.report("facade-b", [new.url])
        await _settle()
        assert old.stopped
        assert supervisor.state().draining == []

    run(scenario)


def test_a_report_from_before_the_switch_does_not_release_the_old_server(run: Callable[..., None]) -> None:
    """A facade that had just started reported nothing in use, then learnt of version 1 and called it."""

    async def scenario(supervisor: Supervisor, world: World) -> None:
        world.aliases["champion"] = "1"
        await supervisor.follow("champion")
        (old,) = world.of("1")
        supervisor.report("new-facade", [])

        world.aliases["champion"] = "2"
        await supervisor.follow("champion")
        await _settle()
        assert not old.stopped

        supervisor.report("new-facade", [world.of("2")[0].url])
        await _settle()
        assert old.stopped

    run(scenario)


def test_a_silent_facade_and_the_longest_drain_stop_holding_the_old_server(run: Callable[..., None]) -> None:
    async def scenario(supervisor: Supervisor, world: World) -> None:
        world.aliases["champion"] = "1"
        await supervisor.follow("champion")
        (old,) = world.of("1")
        supervisor.report("gone", [old.url])
        supervisor.connections_to = lambda port: 1 if port == old.port else 0

        world.aliases["champion"] = "2"
        await supervisor.follow("champion")
        supervisor._reports["gone"].at -= CLIENT_TTL_SECONDS + 1  # NB: its last report is too old
        await _settle()
        assert not old.stopped, "a raw connection forwarded to the old server is still open"

        await asyncio.sleep(1.0)  # ROLLOUT_DRAIN_SECONDS below
        assert old.stopped, "the longest drain is over"

    run(scenario, ROLLOUT_DRAIN_SECONDS=1.0)


@pytest.mark.parametrize(
    ("unloadable", "outcome", "reason"),
    [
        (False, "gate_failed", "it decided the README's approved applicant REJECTED, not APPROVED"),
        (True, "start_failed", "did not start: its server exited with code 1"),
    ],
)
def test_a_version_that_fails_is_stopped_never_published_and_counted(
    run: Callable[..., None], unloadable: bool, outcome: str, reason: str
) -> None:
    async def scenario(supervisor: Supervisor, world: World) -> None:
        world.aliases["champion"] = "1"
        await supervisor.follow("champion")
        before = count(outcome)
        if unloadable:
            world.unloadable.add("3")

        world.aliases["champion"] = "3"
        await supervisor.follow("champion")
        await supervisor.follow("champion")  # NB: not tried again at the next poll

        state = supervisor.state()
        assert state.champion is not None
        assert state.champion.version == "1"
        rollout = state.rollouts["champion"]
        assert (rollout.state, rollout.version) == ("failed", "3")
        assert reason in rollout.reason
        assert rollout.reason.endswith("version 1 keeps serving")
        assert [s.stopped for s in world.of("3")] == [True]
        assert count(outcome) == before + 1
        assert not world.of("1")[0].stopped

    run(scenario)


def test_a_failed_version_is_tried_again_after_the_retry_period(run: Callable[..., None]) -> None:
    async def scenario(supervisor: Supervisor, world: World) -> None:
        world.aliases["champion"] = "1"
        await supervisor.follow("champion")
        world.aliases["champion"] = "3"
        await supervisor.follow("champion")
        await asyncio.sleep(0.3)
        await supervisor.follow("champion")

        assert len(world.of("3")) == 2

    run(scenario, ROLLOUT_RETRY_SECONDS=0.2)


def test_moving_the_alias_back_while_the_old_server_drains_takes_it_back(run: Callable[..., None]) -> None:
    async def scenario(supervisor: Supervisor, world: World) -> None:
        world.aliases["champion"] = "1"
        await supervisor.follow("champion")
        (old,) = world.of("1")
        supervisor.report("facade", [old.url])  # NB: holds the old server in its drain
        world.aliases["champion"] = "2"
        await supervisor.follow("champion")

        world.aliases["champion"] = "1"
        await supervisor.follow("champion")

        assert world.of("1") == [old], "no new server: the draining one was gated again"
        state = supervisor.state()
        assert state.champion is not None
        assert (state.champion.version, state.champion.url) == ("1", old.url)
        assert not old.stopped
        assert [b.version for b in state.draining] == ["2"]

    run(scenario)


def test_a_server_that_exits_while_serving_is_started_again(run: Callable[..., None]) -> None:
    async def scenario(supervisor: Supervisor, world: World) -> None:
        world.aliases["champion"] = "1"
        await supervisor.follow("champion")
        exits = REGISTRY.get_sample_value("credit_model_server_exits_total", {"alias": "champion"}) or 0.0
        world.of("1")[0].alive = False

        await supervisor.follow("champion")

        assert len(world.of("1")) == 2
        assert world.of("1")[0].stopped, "what is left of the exited server's group is stopped"
        assert supervisor.state().champion is not None
        assert (
            REGISTRY.get_sample_value("credit_model_server_exits_total", {"alias": "champion"}) == exits + 1
        )

    run(scenario)


def test_the_challenger_is_served_whatever_it_decides_and_drained_when_its_alias_goes(
    run: Callable[..., None],
) -> None:
    async def scenario(supervisor: Supervisor, world: World) -> None:
        assert supervisor.settings.aliases == ("champion", "challenger")
        world.aliases["challenger"] = "3"
        await supervisor.follow("challenger")
        state = supervisor.state()
        assert state.challenger is not None, "a challenger is gated on /ping and its run id only"
        assert state.challenger.version == "3"

        del world.aliases["challenger"]
        await supervisor.follow("challenger")
        await _settle()
        assert supervisor.state().challenger is None
        assert world.of("3")[0].stopped

    run(scenario, SHADOW_SAMPLE_RATE=0.1)


def test_without_shadowing_no_challenger_is_followed() -> None:
    assert Settings(MLFLOW_TRACKING_URI=TRACKING).aliases == ("champion",)


async def _until(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)


def errors(loop: str) -> float:
    return REGISTRY.get_sample_value("credit_model_supervisor_errors_total", {"loop": loop}) or 0.0


def test_a_server_that_cannot_be_started_fails_that_rollout_and_following_goes_on(
    run: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    """No process at all (Popen or the free port raised OSError): counted, retried; the loop lives on."""

    async def scenario(supervisor: Supervisor, world: World) -> None:
        make, attempts = supervisor._make_server, []

        def no_file_descriptors_left_once(version: Version) -> ScoringServer:
            attempts.append(version.version)
            if len(attempts) == 1:
                raise OSError(24, "Too many open files")
            return make(version)

        supervisor._make_server = no_file_descriptors_left_once
        world.aliases["champion"] = "1"
        failed_before = count("start_failed")
        supervisor.start()

        await _until(lambda: supervisor.state().champion is not None)

        assert attempts == ["1", "1"]
        assert count("start_failed") == failed_before + 1
        assert supervisor.state().rollouts["champion"].state == "completed"
        assert supervisor.problems() == []

    with caplog.at_level("ERROR", logger="serving.supervisor"):
        run(scenario, ROLLOUT_POLL_SECONDS=0.05, ROLLOUT_RETRY_SECONDS=0)
    assert "version 1 failed (start_failed): its server could not be started (OSError)" in caplog.text
    assert "Too many open files" not in caplog.text, "the class is logged, not the error's text"


def test_an_unexpected_error_while_following_is_counted_reported_and_the_loop_goes_on(
    run: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(supervisor: Supervisor, world: World) -> None:
        follow, broken = supervisor.follow, [True]

        async def buggy_follow(alias: str) -> None:
            if broken[0]:
                raise KeyError("a key quoted from a body")
            await follow(alias)

        supervisor.follow = buggy_follow  # type: ignore[method-assign]
        world.aliases["champion"] = "1"
        before = errors("follow-champion")
        supervisor.start()

        await _until(lambda: errors("follow-champion") >= before + 3)
        (problem,) = supervisor.problems()
        assert problem.startswith("follow-champion failed ")
        assert "(KeyError); what is served keeps serving" in problem
        assert supervisor.state().champion is None

        broken[0] = False
        await _until(lambda: supervisor.state().champion is not None)
        assert supervisor.problems() == []

    with caplog.at_level("ERROR", logger="serving.supervisor"):
        run(scenario, ROLLOUT_POLL_SECONDS=0.05)
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith("follow-champion failed (KeyError at test_supervisor.py:"), "once, class and place"
    assert "in buggy_follow)" in line
    assert "quoted from a body" not in caplog.text


def test_a_loop_that_has_stopped_is_a_problem(run: Callable[..., None]) -> None:
    async def scenario(supervisor: Supervisor, world: World) -> None:
        supervisor.start()
        assert supervisor.problems() == []
        supervisor._loops["reaper"].cancel()
        await asyncio.sleep(0.05)
        assert supervisor.problems() == ["reaper has stopped: restart the supervisor"]

    run(scenario)


class OrphaningServer(ScoringServer):
    """A real process group shaped like `mlflow models serve`'s: a parent, and a child on the port."""

    def start(self) -> OrphaningServer:
        child = f"{sys.executable} -m http.server {self.port} --bind 127.0.0.1"
        self.process = subprocess.Popen(
            ["sh", "-c", f"{child} >/dev/null 2>&1 & wait"], stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.started_at = datetime.now(UTC)
        return self

    async def wait_ready(self, within: float) -> str | None:
        deadline = asyncio.get_running_loop().time() + within
        while port_is_free("127.0.0.1", self.port):
            if asyncio.get_running_loop().time() > deadline:
                return "its child never listened"
            await asyncio.sleep(0.05)
        return None


def test_a_server_whose_parent_exited_has_its_group_stopped_and_its_port_freed(
    run: Callable[..., None],
) -> None:
    """mlflow's process died, its uvicorn child did not: the child must not be left serving on the port."""
    groups: list[int] = []

    async def scenario(supervisor: Supervisor, world: World) -> None:
        def real(version: Version) -> ScoringServer:
            server = OrphaningServer(
                "credit-score",
                version,
                bind_host="127.0.0.1",
                local_host="127.0.0.1",
                advertise_host="127.0.0.1",
                port=free_port(),
                env={},
            )
            world.servers.append(cast(FakeServer, server))
            return server

        supervisor._make_server = real
        world.aliases["champion"] = "1"
        await supervisor.follow("champion")
        (crashed,) = world.of("1")
        assert isinstance(crashed, OrphaningServer)
        groups.append(crashed.pid)
        os.kill(crashed.pid, signal.SIGKILL)  # NB: the parent only, as a crash of mlflow's process
        await _until(lambda: not crashed.running())
        assert group_members(crashed.pid) != [], "its child lives on"
        assert not port_is_free("127.0.0.1", crashed.port)

        supervisor._make_server = world.make
        await supervisor.follow("champion")

        assert group_members(crashed.pid) == [], "the orphaned child was stopped with its group"
        assert port_is_free("127.0.0.1", crashed.port)
        assert supervisor.champion_address() == ("127.0.0.1", world.of("1")[1].port)

    try:
        run(scenario)
    finally:
        for pgid in groups:  # NB: only the group this test started, should the supervisor have left it
            if group_members(pgid):
                os.killpg(pgid, signal.SIGKILL)
