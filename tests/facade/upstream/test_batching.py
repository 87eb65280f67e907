"""The micro-batcher: coalescing under load, no wait when idle, order kept, failures contained."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from facade.core.problems import FieldError
from facade.errors import BadUpstreamResponse, ModelRejectedInput, ModelUnavailable
from facade.upstream.batching import MicroBatcher

Row = Mapping[str, object]


class FakeUpstream:
    """Echoes each row's id after ``delay``; records the batches it was sent."""

    def __init__(self, delay: float = 0.01, refuse: set[int] | None = None, fail: bool = False) -> None:
        self.delay, self.refuse, self.fail = delay, refuse or set(), fail
        self.batches: list[list[int]] = []

    async def __call__(self, rows: Sequence[Row]) -> list[int]:
        ids = [int(row["id"]) for row in rows]  # type: ignore[call-overload]
        self.batches.append(ids)
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ModelUnavailable("down")
        if self.refuse & set(ids):
            raise ModelRejectedInput("refused", [FieldError(field="age", rule="must be an integer")])
        return [i * 10 for i in ids]


async def _run(batcher: MicroBatcher[int], ids: list[int]) -> list[object]:
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit({"id": i}) for i in ids), return_exceptions=True)
    finally:
        await batcher.stop()


def test_concurrent_requests_share_calls_and_each_gets_its_own_row() -> None:
    upstream = FakeUpstream()
    batcher = MicroBatcher(upstream, max_rows=16, max_wait=0.005, max_concurrency=1)

    results = asyncio.run(_run(batcher, list(range(50))))

    assert results == [i * 10 for i in range(50)]
    assert len(upstream.batches) < 10
    assert max(len(b) for b in upstream.batches) <= 16
    assert sorted(i for b in upstream.batches for i in b) == list(range(50))


def test_a_lone_request_is_sent_at_once() -> None:
    upstream = FakeUpstream(delay=0)
    batcher = MicroBatcher(upstream, max_rows=64, max_wait=5.0, max_concurrency=2)

    async def one() -> float:
        batcher.start()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.submit({"id": 1})
        elapsed = loop.time() - start
        await batcher.stop()
        return elapsed

    # A 5 s linger would show; an idle batcher must not wait at all.
    assert asyncio.run(one()) < 1.0
    assert upstream.batches == [[1]]


def test_a_failed_call_fails_only_its_own_callers() -> None:
    upstream = FakeUpstream(fail=True)
    batcher = MicroBatcher(upstream, max_rows=4, max_wait=0.0, max_concurrency=1)

    results = asyncio.run(_run(batcher, list(range(6))))

    assert all(isinstance(r, ModelUnavailable) for r in results)


def test_a_refused_row_does_not_fail_its_neighbours() -> None:
    upstream = FakeUpstream(refuse={3})
    batcher = MicroBatcher(upstream, max_rows=8, max_wait=0.01, max_concurrency=1)

    results = asyncio.run(_run(batcher, list(range(8))))

    assert isinstance(results[3], ModelRejectedInput)
    assert [r for i, r in enumerate(results) if i != 3] == [i * 10 for i in range(8) if i != 3]


def test_a_short_answer_fails_the_batch_instead_of_hanging() -> None:
    async def short(rows: Sequence[Row]) -> list[int]:
        return [0]

    batcher: MicroBatcher[int] = MicroBatcher(short, max_rows=4, max_wait=0.01, max_concurrency=1)

    async def go() -> list[int | BaseException]:
        batcher.start()
        await batcher.submit({"id": 0})  # a lone row: the answer's length fits
        results = await asyncio.wait_for(
            asyncio.gather(*(batcher.submit({"id": i}) for i in range(4)), return_exceptions=True), 5
        )
        await batcher.stop()
        return results

    results = asyncio.run(go())
    assert any(isinstance(r, BadUpstreamResponse) for r in results)


def test_queued_callers_are_released_on_stop() -> None:
    started = asyncio.Event()

    async def slow(rows: Sequence[Row]) -> list[int]:
        started.set()
        await asyncio.sleep(0.2)
        return [0] * len(rows)

    batcher: MicroBatcher[int] = MicroBatcher(slow, max_rows=1, max_wait=0.0, max_concurrency=1)

    async def go() -> list[object]:
        batcher.start()
        tasks = [asyncio.create_task(batcher.submit({"id": i})) for i in range(3)]
        await started.wait()
        await batcher.stop()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(go())
    assert results[0] == 0  # in flight when stopping: finished
    assert all(isinstance(r, ModelUnavailable) for r in results[1:])


def test_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        MicroBatcher(FakeUpstream(), max_rows=0)
