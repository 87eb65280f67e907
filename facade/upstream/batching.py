"""Adaptive micro-batching: concurrent single predictions share one ``/invocations`` call.

MLflow's scoring server predicts one request at a time, and most of a one-row request's cost is
per-call overhead (HTTP, JSON, pandas, schema checks), not the trees. The batcher queues single
applications and sends them together:

- when no upstream call is in flight, a request goes out at once (an idle service adds no wait);
- while calls are in flight, arrivals wait for a free slot and may linger up to ``max_wait`` to
  fill a batch of at most ``max_rows``;
- each caller gets its own row back, in order; a failed call fails only the callers in it, and a
  batch the model refuses is retried row by row so only the refused application fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from facade.errors import BadUpstreamResponse, ModelRejectedInput, ModelUnavailable
from facade.upstream.metrics import MICROBATCH_QUEUE_WAIT, MICROBATCH_SIZE

Row = Mapping[str, object]
Result = TypeVar("Result")


@dataclass
class _Pending(Generic[Result]):
    row: Row
    future: asyncio.Future[Result]
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher(Generic[Result]):
    """Coalesces ``submit(row)`` calls into ``send(rows)`` calls; ``send`` returns one result a row."""

    def __init__(
        self,
        send: Callable[[Sequence[Row]], Awaitable[Sequence[Result]]],
        *,
        max_rows: int = 64,
        max_wait: float = 0.002,
        max_concurrency: int = 2,
    ) -> None:
        if max_rows < 1 or max_concurrency < 1 or max_wait < 0:
            raise ValueError("max_rows and max_concurrency must be >= 1, max_wait >= 0")
        self._send = send
        self.max_rows, self.max_wait, self.max_concurrency = max_rows, max_wait, max_concurrency
        self._queue: deque[_Pending[Result]] = deque()
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop dispatching; callers still queued get ModelUnavailable, calls in flight finish."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(ModelUnavailable("The service is shutting down."))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def submit(self, row: Row) -> Result:
        """Score one application in whichever batch it lands in."""
        if self._dispatcher is None:
            raise ModelUnavailable("The micro-batcher is not running.")
        pending: _Pending[Result] = _Pending(row, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._arrived.set()
        return await pending.future

    async def _dispatch(self) -> None:
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            await self._slots.acquire()
            if self._in_flight > 0 and self.max_wait > 0:
                await self._linger()
            batch = [self._queue.popleft() for _ in range(min(self.max_rows, len(self._queue)))]
            batch = [p for p in batch if not p.future.done()]  # NB: callers that gave up
            if not batch:
                self._slots.release()
                continue
            self._in_flight += 1
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _linger(self) -> None:
        """Other calls are busy: let the batch fill up to max_rows or until its oldest waited max_wait."""
        deadline = self._queue[0].enqueued + self.max_wait
        while len(self._queue) < self.max_rows:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _run(self, batch: list[_Pending[Result]]) -> None:
        try:
            now = time.perf_counter()
            for pending in batch:
                MICROBATCH_QUEUE_WAIT.observe(now - pending.enqueued)
            MICROBATCH_SIZE.observe(len(batch))
            await self._deliver(batch)
        finally:
            self._in_flight -= 1
            self._slots.release()

    async def _deliver(self, batch: list[_Pending[Result]]) -> None:
        try:
            results = await self._send([p.row for p in batch])
        except ModelRejectedInput as exc:
            if len(batch) == 1:
                _fail(batch, exc)
                return
            # NB: one refused row must not fail its neighbours: score each on its own.
            await asyncio.gather(*(self._deliver([p]) for p in batch))
            return
        except Exception as exc:
            _fail(batch, exc)
            return
        if len(results) != len(batch):
            _fail(batch, BadUpstreamResponse("The scoring server answered a different number of rows."))
            return
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)


def _fail(batch: list[_Pending[Result]], exc: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(exc)
