"""The real scoring server crashes during a burst through the real facade, then comes back.

Real tracking server, a champion trained with ``mlflow run .``, real ``mlflow models serve`` and
the real facade with its default deadlines, retries and circuit breaker. The scoring server's
process group is SIGKILLed mid-burst: every request must still get an answer (503 or 504, never
a 500, never a hang), readiness must say 503, and after a restart both readiness and predictions
must come back.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from model_code.schema import EXAMPLE_APPLICANTS
from tests.integration.servers import Stack, sqlite_stack

pytestmark = pytest.mark.integration

APPROVED = EXAMPLE_APPLICANTS["approved"]
WORKERS = 8
BEFORE_KILL_SECONDS = 1.5
AFTER_KILL_SECONDS = 4.0
# NB: well above the facade's own deadlines (read 5 s): a request still open then is a hang.
CLIENT_TIMEOUT = httpx.Timeout(15.0)


@dataclass(frozen=True)
class Outcome:
    sent_at: float
    seconds: float
    status: int | None  # None: no answer at all
    problem_type: str = ""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with sqlite_stack(tmp_path_factory.mktemp("faults"), "n_samples=3000", "n_estimators=20") as s:
        yield s


async def _burst_with_crash(stack: Stack) -> tuple[list[Outcome], float]:
    stop = asyncio.Event()
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=WORKERS)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=CLIENT_TIMEOUT, limits=limits) as client:

        async def worker() -> None:
            while not stop.is_set():
                sent_at = time.monotonic()
                try:
                    response = await client.post("/api/v1/predict", json=APPROVED)
                except httpx.HTTPError:
                    outcomes.append(Outcome(sent_at, time.monotonic() - sent_at, None))
                    continue
                kind = response.json().get("type", "") if response.status_code != 200 else ""
                outcomes.append(Outcome(sent_at, time.monotonic() - sent_at, response.status_code, kind))

        workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
        await asyncio.sleep(BEFORE_KILL_SECONDS)
        killed_at = time.monotonic()
        await asyncio.to_thread(stack.kill_scoring)
        await asyncio.sleep(AFTER_KILL_SECONDS)
        stop.set()
        await asyncio.gather(*workers)
    return outcomes, killed_at


def _sequential_fail_fast_ms(stack: Stack, count: int = 30) -> list[float]:
    """While the circuit is open, one request at a time: how long a fail-fast 503 takes end to end."""
    timings = []
    with httpx.Client(base_url=stack.api_url, timeout=CLIENT_TIMEOUT) as client:
        for _ in range(count):
            start = time.perf_counter()
            response = client.post("/api/v1/predict", json=APPROVED)
            if response.json()["type"].endswith("/circuit-open"):
                timings.append((time.perf_counter() - start) * 1000)
    assert timings, "the circuit stays open while the server is down"
    return timings


def _seconds_until(check: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not recovered after {timeout} s")


def test_killing_the_scoring_server_mid_burst_gives_503_or_504_then_recovers(
    stack: Stack, figure: Callable[[str, str], None]
) -> None:
    outcomes, killed_at = asyncio.run(
        asyncio.wait_for(_burst_with_crash(stack), timeout=BEFORE_KILL_SECONDS + AFTER_KILL_SECONDS + 30)
    )

    statuses = Counter(o.status for o in outcomes)
    assert None not in statuses, "every request got an answer"
    assert set(statuses) <= {200, 503, 504}, statuses
    after_kill = [o for o in outcomes if o.sent_at > killed_at + 0.05]
    assert after_kill
    assert {o.status for o in after_kill} <= {503, 504}
    assert max(o.seconds for o in outcomes) < CLIENT_TIMEOUT.read  # type: ignore[operator]
    assert any(o.problem_type.endswith("/circuit-open") for o in outcomes), "the circuit opened"
    ready = httpx.get(f"{stack.api_url}/api/v1/health/ready", timeout=10)
    assert ready.status_code == 503
    fail_fast_ms = _sequential_fail_fast_ms(stack)

    stack.start_scoring()  # NB: returns once the new scoring server answers /ping
    readiness_back = _seconds_until(
        lambda: httpx.get(f"{stack.api_url}/api/v1/health/ready", timeout=10).status_code == 200, timeout=30
    )
    predictions_back = readiness_back + _seconds_until(
        lambda: httpx.post(f"{stack.api_url}/api/v1/predict", json=APPROVED, timeout=10).status_code == 200,
        timeout=30,
    )

    assert readiness_back < 5, "back within 5 s of the scoring server's recovery"
    assert predictions_back < 5, "back within 5 s of the scoring server's recovery"
    mix = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    figure(
        "fault (tests/integration/test_fault_tolerance.py)",
        f"{len(outcomes)} requests from {WORKERS} clients, scoring server SIGKILLed after "
        f"{BEFORE_KILL_SECONDS} s: status mix {mix} (sent after the kill: "
        f"{dict(Counter(o.status for o in after_kill))}); "
        f"slowest answer {max(o.seconds for o in outcomes):.2f} s; "
        f"readiness 503 while down; circuit open: one request at a time answered 503 in "
        f"p50 {statistics.median(fail_fast_ms):.1f} ms, max {max(fail_fast_ms):.1f} ms; "
        f"after restart readiness 200 in {readiness_back:.2f} s, predictions 200 in {predictions_back:.2f} s",
    )
