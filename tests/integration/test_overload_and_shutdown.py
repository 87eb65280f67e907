"""The real facade process under overload and SIGTERM, in front of a deliberately slow stand-in upstream.

The stand-in (``stub_upstream``) takes a fixed time per prediction, so that requests are really
in flight when the test acts; a real model would only add noise. The facade is the real one,
started by ``Stack`` with ``python -m facade`` on a free port and stopped by process group.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from model_code.schema import EXAMPLE_APPLICANTS
from scripts.processes import group_members
from tests.integration.servers import Stack
from tests.integration.stub_upstream import StubUpstream

pytestmark = pytest.mark.integration

APPROVED = EXAMPLE_APPLICANTS["approved"]
CAP = 4
WAVES = 10
CLIENT_TIMEOUT = httpx.Timeout(20.0)


def facade_before(stub: StubUpstream, root: Path) -> Stack:
    """A Stack whose tracking and scoring servers are both the stand-in (no mlflow process started)."""
    return Stack(root, backend_store_uri="unused", mlflow_port=stub.port, scoring_port=stub.port)


@pytest.fixture
def slow_stub() -> Iterator[StubUpstream]:
    stub = StubUpstream().start()
    try:
        yield stub
    finally:
        stub.stop()


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def test_at_twice_the_in_flight_cap_only_200_and_503_with_retry_after(
    slow_stub: StubUpstream, tmp_path: Path, figure: Callable[[str, str], None]
) -> None:
    stack = facade_before(slow_stub, tmp_path)
    try:
        stack.start_facade(MAX_IN_FLIGHT=str(CAP))
        slow_stub.delay = 0.3

        async def waves() -> list[tuple[httpx.Response, float]]:
            limits = httpx.Limits(max_connections=2 * CAP)
            async with httpx.AsyncClient(
                base_url=stack.api_url, timeout=CLIENT_TIMEOUT, limits=limits
            ) as client:

                async def one() -> tuple[httpx.Response, float]:
                    start = time.perf_counter()
                    response = await client.post("/api/v1/predict", json=APPROVED)
                    return response, time.perf_counter() - start

                results: list[tuple[httpx.Response, float]] = []
                for _ in range(WAVES):  # NB: each wave: 2 x MAX_IN_FLIGHT requests at the same moment
                    results += await asyncio.gather(*(one() for _ in range(2 * CAP)))
                return results

        results = asyncio.run(asyncio.wait_for(waves(), timeout=120))
    finally:
        stack.stop()

    statuses = [r.status_code for r, _ in results]
    assert set(statuses) <= {200, 503}, statuses
    shed = [(r, t) for r, t in results if r.status_code == 503]
    admitted = [t for r, t in results if r.status_code == 200]
    for response, _ in shed:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/overloaded")
        assert int(response.headers["retry-after"]) >= 1
    assert admitted
    assert shed
    assert slow_stub.max_in_flight <= CAP, "never more than MAX_IN_FLIGHT predictions reach the model"
    shed_ms = [t * 1000 for _, t in shed]
    figure(
        "overload (tests/integration/test_overload_and_shutdown.py)",
        f"{len(results)} requests in waves of {2 * CAP} at MAX_IN_FLIGHT={CAP}, upstream 0.3 s: "
        f"shed rate {len(shed) / len(results):.0%} (all 503 + Retry-After), "
        f"admitted p99 {p99(admitted) * 1000:.0f} ms, "
        f"shed p50 {statistics.median(shed_ms):.1f} ms / p99 {p99(shed_ms):.1f} ms, "
        f"upstream max in flight {slow_stub.max_in_flight}",
    )


async def _requests_in_flight(client: httpx.AsyncClient) -> float:
    """The facade's http_requests_in_flight gauge."""
    text = (await client.get("/metrics")).text
    return next(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("http_requests_in_flight ")
    )


def test_sigterm_during_a_burst_drops_no_request_in_flight(
    slow_stub: StubUpstream, tmp_path: Path, figure: Callable[[str, str], None]
) -> None:
    burst, drain, delay = 20, 0.5, 2.0
    stack = facade_before(slow_stub, tmp_path)
    try:
        stack.start_facade(SHUTDOWN_DRAIN_SECONDS=str(drain), SHUTDOWN_GRACE_SECONDS="8")
        assert stack.facade is not None
        facade = stack.facade
        slow_stub.delay = delay

        async def burst_then_sigterm() -> tuple[list[httpx.Response | BaseException], int, float]:
            limits = httpx.Limits(max_connections=burst)
            answered_before = slow_stub.predictions  # NB: the facade's warm-up already called it
            async with httpx.AsyncClient(
                base_url=stack.api_url, timeout=CLIENT_TIMEOUT, limits=limits
            ) as client:
                requests = [
                    asyncio.ensure_future(client.post("/api/v1/predict", json=APPROVED)) for _ in range(burst)
                ]
                # NB: with micro-batching the burst shares a few upstream calls, so "in flight" is
                # counted where the client sees it: requests the facade has taken and not answered.
                async with httpx.AsyncClient(base_url=stack.api_url, timeout=CLIENT_TIMEOUT) as watcher:
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        if slow_stub.in_flight and await _requests_in_flight(watcher) >= burst:
                            break
                        await asyncio.sleep(0.02)
                assert slow_stub.in_flight > 0, "the burst reached the scoring server before SIGTERM"
                assert slow_stub.predictions == answered_before, "no answer has come back yet"
                os.killpg(facade.pid, signal.SIGTERM)
                sent_at = time.monotonic()
                async with httpx.AsyncClient(base_url=stack.api_url, timeout=CLIENT_TIMEOUT) as prober:
                    readiness = (await prober.get("/api/v1/health/ready")).status_code
                outcomes = await asyncio.gather(*requests, return_exceptions=True)
                return list(outcomes), readiness, sent_at

        outcomes, readiness, sigterm_at = asyncio.run(asyncio.wait_for(burst_then_sigterm(), timeout=60))
        facade.wait_until(lambda: not facade.running(), timeout=drain + 8 + 5, what="exit after SIGTERM")
        exited_after = time.monotonic() - sigterm_at
    finally:
        stack.stop()

    dropped = [o for o in outcomes if not isinstance(o, httpx.Response) or o.status_code != 200]
    assert readiness == 503, "readiness turns 503 as soon as SIGTERM arrives"
    assert dropped == []
    assert group_members(facade.pid) == []
    figure(
        "SIGTERM (tests/integration/test_overload_and_shutdown.py)",
        f"{burst} predictions in flight (upstream {delay} s), SIGTERM, drain {drain} s: "
        f"readiness 503 at once, {len(dropped)} dropped, {burst - len(dropped)} answered 200, "
        f"process exited {exited_after:.1f} s after SIGTERM",
    )
