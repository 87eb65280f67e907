"""Champion rollouts on real servers: the alias moves under load and the API follows without a failed request.

A real tracking server holds four versions: v1 and v2 (two seeds), v3 (a decision threshold that
rejects the README's approved applicant: it fails the gate) and v4 (its pipeline file corrupted: it
cannot load). The serving supervisor follows ``@champion`` every second and the facade follows the
supervisor, exactly as ``make run`` starts them, with decision records on (SQLite); eight clients
keep predicting while the alias moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from model_code.schema import EXAMPLE_APPLICANTS
from scripts.bench_rollout import Load, move_alias
from scripts.processes import free_port, group_members
from tests.figures import record
from tests.integration.servers import Stack, sqlite_tracking

pytestmark = pytest.mark.integration

TRAIN = ("n_samples=3000", "n_estimators=20")
POLL_SECONDS = 1.0
# NB: the facade's default SUPERVISOR_POLL_SECONDS: how long it may take to learn of a switch.
FACADE_POLL_SECONDS = 1.0
FIGURE = "rollouts (tests/integration/test_rollouts.py)"


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s")
        time.sleep(0.1)


def state(stack: Stack) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{stack.supervisor_url}/state", timeout=10).json()
    return body


def move(stack: Stack, alias: str, version: str) -> float:
    """Point ``alias`` at ``version`` through the registry's REST API; the moment it was done."""
    return move_alias(stack.tracking_uri, alias, version)


def supervisor_sample(stack: Stack, name: str, **labels: str) -> float:
    text = httpx.get(f"{stack.supervisor_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def facade_sample(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += float(sample.value)
    return total


def children_of(pid: int) -> list[str]:
    """Command lines of the live children of ``pid`` (the supervisor's scoring servers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[1]) == pid:
                found.append(Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found


def register_unloadable_version(stack: Stack) -> str:
    """v1's model files with its pipeline overwritten, registered as a new version: it cannot load."""
    import mlflow

    mlflow.set_tracking_uri(stack.tracking_uri)
    local = Path(mlflow.artifacts.download_artifacts("models:/credit-score/1", dst_path=tempfile.mkdtemp()))
    (local / "artifacts" / "pipeline.skops").write_bytes(b"not a pipeline")
    experiment_id = mlflow.set_experiment(stack.store.experiment).experiment_id
    # NB: set_experiment leaves MLFLOW_EXPERIMENT_ID in this process's environment for the rest of
    # the session; the run names its experiment instead.
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifacts(str(local), "model")
    return str(mlflow.register_model(f"runs:/{run.info.run_id}/model", "credit-score").version)


def recorded(api_url: str, application_ids: list[str]) -> dict[str, dict[str, Any] | int]:
    """Each decision record as ``GET /api/v1/decisions/{id}`` gives it (the status, when not 200)."""

    async def run() -> dict[str, dict[str, Any] | int]:
        limit = asyncio.Semaphore(8)
        async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:

            async def one(application_id: str) -> tuple[str, dict[str, Any] | int]:
                async with limit:
                    response = await client.get(f"/api/v1/decisions/{application_id}")
                return (
                    application_id,
                    response.json() if response.status_code == 200 else response.status_code,
                )

            return dict(await asyncio.gather(*(one(i) for i in application_ids)))

    return asyncio.run(run())


def run_of(stack: Stack, version: str) -> tuple[str, float | None]:
    """The run a registered version was built from, and the decision threshold that run logged."""
    client = MlflowClient(tracking_uri=stack.tracking_uri)
    run_id = str(client.get_model_version("credit-score", version).run_id)
    threshold = client.get_run(run_id).data.params.get("decision_threshold")
    return run_id, float(threshold) if threshold is not None else None


def not_as_answered(
    record: dict[str, Any] | int, answer: dict[str, Any], run: tuple[str, float | None]
) -> str:
    """What in the record differs from the answer and from the run that decided it ("" if nothing)."""
    if isinstance(record, int):
        return f"GET answered {record}"
    expected = {
        "model_version": answer["model_version"],
        "model_run_id": run[0],
        "decision_threshold": run[1],
        **{k: answer[k] for k in ("prediction", "credit_score", "rejection_probability", "reasons")},
    }
    wrong = [k for k, v in expected.items() if record[k] != v]
    if datetime.fromisoformat(record["timestamp"]) != datetime.fromisoformat(answer["timestamp"]):
        wrong.append("timestamp")
    return ", ".join(wrong)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("rollouts")
    with sqlite_tracking(root) as stack:
        stack.train(*TRAIN, "seed=1")
        stack.train(*TRAIN, "seed=2")
        # NB: sigmoid calibration never gives a probability of 0, so the threshold rejects everyone.
        stack.train(*TRAIN, "seed=3", "decision_threshold=0.001", "calibration=sigmoid")
        assert register_unloadable_version(stack) == "4"
        # NB: training set the aliases as it went (a loser becomes challenger): start from v1 alone.
        move(stack, "champion", "1")
        client = MlflowClient(tracking_uri=stack.tracking_uri)
        with contextlib.suppress(MlflowException):
            client.delete_registered_model_alias("credit-score", "challenger")
        stack.start_supervisor(ROLLOUT_POLL_SECONDS=str(POLL_SECONDS), SHADOW_SAMPLE_RATE="1")
        # NB: records on, as in Compose: every decision answered during a switch must be recorded
        # under the version, run and threshold that decided it.
        stack.start_facade(DECISIONS_DATABASE_URL=f"sqlite:///{root / 'decisions.db'}")
        yield stack


def test_a_new_champion_takes_over_under_load_without_a_failed_request(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    before = state(stack)
    assert before["champion"]["version"] == "1"
    old_pid = before["champion"]["pid"]

    with Load(stack.api_url) as load:
        moved = move(stack, "champion", "2")
        wait_for(
            lambda: (s := state(stack))["champion"]["version"] == "2" and not s["draining"],
            240,
            "switch to version 2 and the old server drained",
        )
        time.sleep(2 * FACADE_POLL_SECONDS)
    after = state(stack)

    rollout = after["rollouts"]["champion"]
    first = load.first("2")
    assert first is not None, "version 2 never answered"
    assert load.failed() == [], f"{len(load.failed())} of {len(load.answers)} requests failed"
    assert set(load.readiness) == {200}, "readiness stays 200 throughout"
    assert rollout["state"] == "completed"
    assert (rollout["version"], rollout["previous_version"]) == ("2", "1")
    # NB: the poll period, the server's start and gate, the facade's poll, and slack for a busy machine.
    bound = POLL_SECONDS + rollout["start_seconds"] + FACADE_POLL_SECONDS + 5
    assert first.received - moved <= bound
    late = [a for a in load.answers if a.sent > first.received and a.version != "2"]
    assert late == [], "once version 2 has answered, every later request is answered by version 2"
    assert group_members(old_pid) == [], "the old server's processes are gone"
    assert not any("models:/credit-score/1" in c for c in children_of(stack.supervisor.pid))  # type: ignore[union-attr]

    # NB: a decision we return is a decision we have recorded, whichever server answered it.
    answered = [a.body for a in load.answers if a.status == 200 and a.body is not None]
    assert {body["model_version"] for body in answered} == {"1", "2"}
    runs = {version: run_of(stack, version) for version in ("1", "2")}
    assert runs["1"][0] != runs["2"][0]
    records = recorded(stack.api_url, [body["application_id"] for body in answered])
    unlike = {
        body["application_id"]: why
        for body in answered
        if (why := not_as_answered(records[body["application_id"]], body, runs[body["model_version"]]))
    }
    assert unlike == {}, (
        f"{len(unlike)} of {len(answered)} answers not recorded as answered: {list(unlike.items())[:5]}"
    )
    record(
        request.config,
        FIGURE,
        f"alias move to first answer from v2: {first.received - moved:.1f} s (poll {POLL_SECONDS:.0f} s, "
        f"v2 start and gate {rollout['start_seconds']:.1f} s); {len(load.answers)} requests by 8 clients "
        f"during the rollout, {len(load.failed())} failed",
    )


@pytest.mark.parametrize(
    ("version", "outcome", "why"),
    [("3", "gate_failed", "approved applicant REJECTED"), ("4", "start_failed", "exited")],
    ids=["rejects-the-approved-applicant", "cannot-load"],
)
def test_a_version_that_fails_is_never_routed_to_and_the_old_one_keeps_serving(
    stack: Stack, version: str, outcome: str, why: str
) -> None:
    assert state(stack)["champion"]["version"] == "2"
    counted = supervisor_sample(stack, "credit_model_rollouts_total", alias="champion", outcome=outcome)

    with Load(stack.api_url) as load:
        move(stack, "champion", version)
        wait_for(
            lambda: (
                (r := state(stack)["rollouts"]["champion"])["version"] == version and r["state"] == "failed"
            ),
            240,
            f"the rollout of version {version} to fail",
        )
        time.sleep(2 * FACADE_POLL_SECONDS)

    rollout = state(stack)["rollouts"]["champion"]
    info = httpx.get(f"{stack.api_url}/api/v1/model/info", timeout=30).json()
    assert load.failed() == []
    assert {a.version for a in load.answers} == {"2"}, f"version {version} never answered a client"
    assert set(load.readiness) == {200}
    assert why in rollout["reason"]
    assert "version 2 keeps serving" in rollout["reason"]
    assert info["version"] == "2"
    assert (info["rollout"]["state"], info["rollout"]["version"]) == ("failed", version)
    assert (
        supervisor_sample(stack, "credit_model_rollouts_total", alias="champion", outcome=outcome)
        == counted + 1
    )
    assert not any(f"models:/credit-score/{version}" in c for c in children_of(stack.supervisor.pid))  # type: ignore[union-attr]


def test_moving_the_alias_back_rolls_back_the_same_way(stack: Stack) -> None:
    with Load(stack.api_url) as load:
        move(stack, "champion", "1")
        wait_for(
            lambda: (s := state(stack))["champion"]["version"] == "1" and not s["draining"],
            240,
            "the rollback to version 1",
        )
        time.sleep(2 * FACADE_POLL_SECONDS)

    first = load.first("1")
    assert first is not None, "version 1 never answered"
    assert load.failed() == []
    assert set(load.readiness) == {200}
    assert [a for a in load.answers if a.sent > first.received and a.version != "1"] == []
    assert state(stack)["rollouts"]["champion"]["state"] == "completed"


# --- the challenger's shadow ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shadow_pair(stack: Stack) -> tuple[str, str]:
    """Two more facades on the same servers (stopped with the stack): shadow at every application, and off."""
    move(stack, "challenger", "3")
    wait_for(
        lambda: (state(stack).get("challenger") or {}).get("version") == "3", 240, "the challenger served"
    )
    on, off = free_port(), free_port()
    stack.start_another_facade("facade-shadow-on", on, SHADOW_SAMPLE_RATE="1")
    stack.start_another_facade("facade-shadow-off", off, SHADOW_SAMPLE_RATE="0")
    return f"http://127.0.0.1:{on}", f"http://127.0.0.1:{off}"


def _public(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("application_id", "timestamp")}


def _settled(url: str) -> dict[str, float]:
    """The shadow's counters once every sampled application is compared, dropped or failed."""
    names = ("credit_shadow_sampled_total", "credit_shadow_dropped_total", "credit_shadow_failed_total")
    counts: dict[str, float] = {}

    def done() -> bool:
        counts.update({name: facade_sample(url, name) for name in names})
        counts["compared"] = facade_sample(url, "credit_shadow_comparisons_total")
        return counts["credit_shadow_sampled_total"] == sum(counts[n] for n in names[1:]) + counts["compared"]

    wait_for(done, 60, "the shadow to settle")
    return counts


def test_shadow_on_and_off_give_identical_answers_and_the_counters_add_up(
    shadow_pair: tuple[str, str],
) -> None:
    on, off = shadow_pair
    applicants = [EXAMPLE_APPLICANTS["approved"], EXAMPLE_APPLICANTS["rejected"]] * 5
    answers_on = [_public(httpx.post(f"{on}/api/v1/predict", json=a, timeout=30).json()) for a in applicants]
    answers_off = [
        _public(httpx.post(f"{off}/api/v1/predict", json=a, timeout=30).json()) for a in applicants
    ]

    counts = _settled(on)
    info = httpx.get(f"{on}/api/v1/model/info", timeout=30).json()

    assert answers_on == answers_off
    assert {a["model_version"] for a in answers_on} == {"1"}
    assert counts["credit_shadow_sampled_total"] == counts["compared"] == len(applicants)
    # NB: v3 rejects everyone: it disagrees on the approved applicant only.
    assert facade_sample(on, "credit_shadow_comparisons_total", agreement="only_champion_approves") == 5
    assert facade_sample(on, "credit_shadow_comparisons_total", agreement="same") == 5
    assert facade_sample(off, "credit_shadow_sampled_total") == 0
    shadow = info["challenger"]["shadow"]
    assert (info["version"], info["challenger"]["version"]) == ("1", "3")
    assert (shadow["champion_version"], shadow["challenger_version"], shadow["compared"]) == ("1", "3", 10)
    assert shadow["agreement_rate"] == 0.5


def _burst(url: str, n: int = 40, clients: int = 4) -> tuple[list[int | None], float]:
    """``n`` predictions by ``clients`` clients: their statuses and the 95th percentile latency."""

    async def run() -> tuple[list[int | None], list[float]]:
        statuses: list[int | None] = []
        latencies: list[float] = []
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def one(applicant: dict[str, object]) -> None:
                started = time.monotonic()
                try:
                    statuses.append((await client.post("/api/v1/predict", json=applicant)).status_code)
                except httpx.HTTPError:
                    statuses.append(None)
                latencies.append(time.monotonic() - started)

            names = ["approved", "rejected"] * (n // 2)
            for start in range(0, n, clients):
                await asyncio.gather(
                    *(one(EXAMPLE_APPLICANTS[name]) for name in names[start : start + clients])
                )
        return statuses, latencies

    statuses, latencies = asyncio.run(run())
    return statuses, statistics.quantiles(latencies, n=20)[-1]


@pytest.mark.parametrize("trouble", ["hung", "killed"])
def test_a_slow_or_dead_challenger_changes_no_client_status_and_no_latency_beyond_noise(
    stack: Stack, shadow_pair: tuple[str, str], trouble: str, request: pytest.FixtureRequest
) -> None:
    on, off = shadow_pair
    challenger = state(stack)["challenger"]
    _, baseline_p95 = _burst(off)
    failed_before = facade_sample(on, "credit_shadow_failed_total") + facade_sample(
        on, "credit_shadow_dropped_total"
    )

    # NB: SIGSTOP leaves the server's socket open and answering nothing, as a hung or overloaded one;
    # SIGKILL is a crash (the supervisor starts the same version again).
    os.killpg(challenger["pid"], signal.SIGSTOP if trouble == "hung" else signal.SIGKILL)
    try:
        statuses, p95 = _burst(on)
        # NB: the hung call gives up after the facade's read deadline (5 s); then the failures count.
        wait_for(
            lambda: (
                facade_sample(on, "credit_shadow_failed_total")
                + facade_sample(on, "credit_shadow_dropped_total")
                > failed_before
            ),
            60,
            "the shadow's failures counted",
        )
    finally:
        if trouble == "hung":
            os.killpg(challenger["pid"], signal.SIGCONT)

    assert statuses == [200] * len(statuses)
    # NB: generous: the shadow's work is off the request path; a request that waited for the hung
    # challenger would take its 5 s read deadline.
    assert p95 < max(1.0, 3 * baseline_p95 + 0.2), (
        f"p95 {p95:.3f} s with the challenger {trouble}, {baseline_p95:.3f} s off"
    )
    record(
        request.config,
        f"{FIGURE} shadow, challenger {trouble}",
        f"challenger {trouble}: {len(statuses)} requests all {set(statuses)}, p95 {1000 * p95:.0f} ms "
        f"(shadow off {1000 * baseline_p95:.0f} ms)",
    )
    if trouble == "killed":
        wait_for(
            lambda: (
                (s := state(stack)).get("challenger") is not None
                and s["challenger"]["pid"] != challenger["pid"]
            ),
            240,
            "the challenger started again",
        )
        assert supervisor_sample(stack, "credit_model_server_exits_total", alias="challenger") == 1
