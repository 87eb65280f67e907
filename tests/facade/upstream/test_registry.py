"""The registry client's lookups shared by concurrent callers: one request a run, every caller its answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
import respx

from facade.errors import RegistryUnavailable
from facade.upstream.registry import RegistryClient
from tests.facade.facade_fakes import RUN_1, RUN_BODY, TRACKING_URI, search_versions

SEARCH = f"{TRACKING_URI}/api/2.0/mlflow/model-versions/search"
RUN = f"{TRACKING_URI}/api/2.0/mlflow/runs/get"


Responder = Callable[[httpx.Request], httpx.Response]


def run_body(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=RUN_BODY)


def slow(respond: Responder) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # NB: a real round trip suspends its caller
        return respond(request)

    return answer


def test_concurrent_first_callers_of_a_run_share_one_request() -> None:
    async def scenario() -> tuple[list[str], list[float | None]]:
        async with httpx.AsyncClient(base_url=TRACKING_URI) as http:
            registry = RegistryClient(http, "credit-score")
            versions = await asyncio.gather(*(registry.version_for_run(RUN_1) for _ in range(10)))
            thresholds = await asyncio.gather(*(registry.decision_threshold(RUN_1) for _ in range(10)))
            # NB: and later callers get the cached answer without asking again
            await registry.version_for_run(RUN_1)
            await registry.decision_threshold(RUN_1)
            return list(versions), list(thresholds)

    with respx.mock() as router:
        search = router.get(SEARCH).mock(side_effect=slow(search_versions))
        run = router.get(RUN).mock(side_effect=slow(run_body))
        versions, thresholds = asyncio.run(scenario())

    assert versions == ["1"] * 10
    assert thresholds == [0.45] * 10
    assert (search.call_count, run.call_count) == (1, 1)


def test_a_shared_lookup_that_fails_fails_its_callers_and_the_next_call_asks_again() -> None:
    async def scenario() -> tuple[list[object], float | None]:
        async with httpx.AsyncClient(base_url=TRACKING_URI) as http:
            registry = RegistryClient(http, "credit-score")
            failed = await asyncio.gather(
                *(registry.decision_threshold(RUN_1) for _ in range(3)), return_exceptions=True
            )
            return list(failed), await registry.decision_threshold(RUN_1)

    with respx.mock() as router:
        run = router.get(RUN).mock(
            side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=RUN_BODY)]
        )
        failed, threshold = asyncio.run(scenario())

    assert all(isinstance(outcome, RegistryUnavailable) for outcome in failed)
    assert threshold == 0.45
    assert run.call_count == 2


def test_a_caller_who_stops_waiting_does_not_cancel_the_lookup_for_the_others() -> None:
    async def scenario() -> str:
        async with httpx.AsyncClient(base_url=TRACKING_URI) as http:
            registry = RegistryClient(http, "credit-score")
            impatient = asyncio.create_task(registry.version_for_run(RUN_1))
            patient = asyncio.create_task(registry.version_for_run(RUN_1))
            await asyncio.sleep(0.01)
            impatient.cancel()
            with pytest.raises(asyncio.CancelledError):
                await impatient
            return await patient

    with respx.mock() as router:
        router.get(SEARCH).mock(side_effect=slow(search_versions))
        assert asyncio.run(scenario()) == "1"
