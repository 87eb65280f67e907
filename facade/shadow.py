"""Shadow scoring: a sampled share of client applications is scored by the challenger too, off the hot path.

After the champion has answered a client, ``offer`` picks each application with probability
``SHADOW_SAMPLE_RATE`` and queues the picks with the champion's rows; it never waits and never
raises, and when ``SHADOW_QUEUE_SIZE`` applications are already waiting the picks are dropped
(``credit_shadow_dropped_total``). One worker sends what waits to the challenger's scoring server,
up to 64 rows a call, and compares each answer with the champion's: the decisions
(``credit_shadow_comparisons_total{agreement}``) and the probabilities of default
(``credit_shadow_risk_delta``, challenger minus champion). No client ever sees a challenger's answer;
a slow or dead challenger only fills the queue and counts failures (``credit_shadow_failed_total``).
Every sampled application ends up counted once: compared, dropped or failed.

This instance's comparisons are also tallied per pair (champion version, challenger version) for
``/api/v1/model/info``, which shows the pair served now. NB: during a rollout micro-batches of the
old and the new champion interleave for a while; their comparisons go to their own pair's tally,
so the one shown neither starts over nor mixes versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from facade.contract import ScoredRow
from facade.errors import BadUpstreamResponse, UpstreamError
from facade.metrics import (
    AGREEMENTS,
    SHADOW_COMPARISONS,
    SHADOW_DROPPED,
    SHADOW_DURATION,
    SHADOW_FAILED,
    SHADOW_RISK_DELTA,
    SHADOW_SAMPLED,
)
from facade.upstream.backends import ScoringBackends
from facade.upstream.registry import RegistryClient
from model_code.contract import APPROVED

logger = logging.getLogger(__name__)

Application = Mapping[str, object]
MAX_ROWS_PER_CALL = 64
# NB: the pairs seen by this process, oldest dropped first: a few rollouts' worth.
MAX_PAIRS = 16
Pair = tuple[str, str]


@dataclass(frozen=True)
class _Sample:
    applications: list[Application]
    champion: list[ScoredRow]
    champion_version: str


@dataclass
class Tally:
    """Comparisons of one champion version with one challenger version, as this facade made them."""

    champion_version: str
    challenger_version: str
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    agreement: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AGREEMENTS, 0))
    risk_delta_sum: float = 0.0

    @property
    def compared(self) -> int:
        return sum(self.agreement.values())


def agreement(champion: str, challenger: str) -> str:
    """How the challenger's decision compares with the champion's (a value of AGREEMENTS)."""
    if champion == challenger:
        return "same"
    return "only_champion_approves" if champion == APPROVED else "only_challenger_approves"


class Shadow:
    """Samples scored applications into a bounded queue; one worker has the challenger score and compares."""

    def __init__(
        self,
        backends: ScoringBackends,
        registry: RegistryClient,
        rate: float,
        queue_size: int,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.rate = rate
        self.queue_size = queue_size
        self._backends = backends
        self._registry = registry
        self._draw = draw
        self._pending: deque[_Sample] = deque()
        self._queued = 0
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._failing = False
        # By (champion version, challenger version), in the order the pairs were first seen.
        self.tallies: dict[Pair, Tally] = {}
        self.dropped = 0
        self.failed = 0

    @property
    def tally(self) -> Tally | None:
        """The comparisons of the pair served now; before the supervisor names one, the latest pair's."""
        state = self._backends.state
        if state is not None and state.champion is not None and state.challenger is not None:
            pair = (state.champion.version, state.challenger.version)
            if pair not in self.tallies:
                self._tally(*pair)  # NB: none compared yet: from now on
            return self.tallies[pair]
        return next(reversed(self.tallies.values()), None)

    @property
    def queued(self) -> int:
        """Sampled applications waiting for the challenger, or being scored by it, now."""
        return self._queued

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="shadow")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    def offer(
        self, applications: Sequence[Application], rows: Sequence[ScoredRow], champion_version: str
    ) -> None:
        """Queue a sample of what the champion just scored for the challenger; never blocks, never raises."""
        if self.rate <= 0 or self._backends.challenger is None:
            return
        picked = [i for i in range(len(rows)) if self._draw() < self.rate]
        if not picked:
            return
        SHADOW_SAMPLED.inc(len(picked))
        if self._queued + len(picked) > self.queue_size:
            SHADOW_DROPPED.inc(len(picked))
            self.dropped += len(picked)
            return
        self._pending.append(
            _Sample([applications[i] for i in picked], [rows[i] for i in picked], champion_version)
        )
        self._queued += len(picked)
        self._arrived.set()

    async def _work(self) -> None:
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            batch = [self._pending.popleft()]
            rows = len(batch[0].applications)
            while self._pending and rows + len(self._pending[0].applications) <= MAX_ROWS_PER_CALL:
                batch.append(self._pending.popleft())
                rows += len(batch[-1].applications)
            try:
                await self._compare(batch, rows)
            finally:
                self._queued -= rows

    async def _compare(self, batch: list[_Sample], rows: int) -> None:
        client = self._backends.challenger
        start = time.perf_counter()
        try:
            if client is None:
                raise BadUpstreamResponse("The challenger is no longer served.")
            answers = await client.predict([a for sample in batch for a in sample.applications])
            run_ids = {answer.model_run_id for answer in answers}
            if len(run_ids) != 1:
                raise BadUpstreamResponse("The challenger's rows name different model runs.")
            version = await self._registry.version_for_run(run_ids.pop())
        except UpstreamError as exc:
            SHADOW_FAILED.inc(rows)
            self.failed += rows
            if not self._failing:
                logger.warning(
                    "shadow: the challenger did not score %d sampled applications (%s)",
                    rows,
                    type(exc).__name__,
                )
            self._failing = True
            return
        finally:
            if client is not None:
                SHADOW_DURATION.observe(time.perf_counter() - start)
        self._failing = False
        pairs = zip([(r, s.champion_version) for s in batch for r in s.champion], answers, strict=True)
        for (champion, champion_version), challenger in pairs:
            kind = agreement(champion.prediction, challenger.prediction)
            delta = challenger.rejection_probability - champion.rejection_probability
            SHADOW_COMPARISONS.labels(kind).inc()
            SHADOW_RISK_DELTA.observe(delta)
            tally = self._tally(champion_version, version)
            tally.agreement[kind] += 1
            tally.risk_delta_sum += delta

    def _tally(self, champion_version: str, challenger_version: str) -> Tally:
        pair = (champion_version, challenger_version)
        tally = self.tallies.get(pair)
        if tally is None:
            if len(self.tallies) >= MAX_PAIRS:
                del self.tallies[next(iter(self.tallies))]
            tally = self.tallies[pair] = Tally(champion_version, challenger_version)
        return tally
