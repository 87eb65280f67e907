"""Turns scoring-server answers into versioned predictions: where the truthful model_version is decided.

The version is always mapped from the run id the scoring server returned in that very answer,
never taken from configuration or remembered from an earlier answer. Routes call the one
``PredictionService`` the app owns; it calls the champion's scoring server (whichever
``facade.upstream.backends`` names now), counts decisions, feeds the drift window, offers a sample
to the challenger's shadow and knows whether the model was last seen served.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from facade.contract import ScoredRow
from facade.drift import DriftMonitor
from facade.errors import BadUpstreamResponse, ModelRejectedInput, ModelUnavailable, NotReady, UpstreamError
from facade.metrics import PREDICTION_DURATION, PREDICTIONS
from facade.shadow import Shadow
from facade.upstream.backends import ScoringBackends
from facade.upstream.batching import MicroBatcher
from facade.upstream.registry import RegistryClient
from facade.upstream.scoring import ScoringClient
from model_code.schema import EXAMPLE_APPLICANTS

Application = Mapping[str, object]
Answer = TypeVar("Answer")


@dataclass(frozen=True)
class Scored:
    """Rows scored in one upstream call, with the run and registered version that scored them."""

    rows: list[ScoredRow]
    run_id: str
    model_version: str


@dataclass(frozen=True)
class ScoredOne:
    """One application's row and the registered version that scored it (what the batcher returns)."""

    row: ScoredRow
    model_version: str


@dataclass(frozen=True)
class Batching:
    """How single predictions are coalesced (the MICROBATCH_* settings)."""

    max_rows: int
    max_wait: float
    max_concurrency: int


def _single_run(rows: Sequence[ScoredRow]) -> str:
    run_ids = {row.model_run_id for row in rows}
    if len(run_ids) != 1:
        raise BadUpstreamResponse("The scoring server's rows name different model runs.")
    return str(run_ids.pop())


class PredictionService:
    """Scores applications and names the registered version that answered; owns the micro-batcher."""

    def __init__(
        self,
        backends: ScoringBackends,
        registry: RegistryClient,
        drift: DriftMonitor,
        batching: Batching | None,
        shadow: Shadow | None = None,
    ) -> None:
        self.backends = backends
        self.registry = registry
        self.drift = drift
        self.shadow = shadow
        # NB: what the model_loaded gauge mirrors: the last upstream answer found the model served
        # and its version known.
        self.model_loaded = False
        self._batcher: MicroBatcher[ScoredOne] | None = None
        if batching is not None:
            self._batcher = MicroBatcher(
                self._score_each,
                max_rows=batching.max_rows,
                max_wait=batching.max_wait,
                max_concurrency=batching.max_concurrency,
            )

    def start(self) -> None:
        if self._batcher is not None:
            self._batcher.start()
        if self.shadow is not None:
            self.shadow.start()

    async def stop(self) -> None:
        if self._batcher is not None:
            await self._batcher.stop()
        if self.shadow is not None:
            await self.shadow.stop()

    async def _on_champion(self, call: Callable[[ScoringClient], Awaitable[Answer]]) -> Answer:
        """``call`` the champion's client; if it cannot be reached and the champion has moved, the new one."""
        client = self.backends.champion
        try:
            return await call(client)
        except ModelUnavailable:
            # NB: unreachable or known down (never a timeout or a refusal: the model may have seen those).
            # A rollout may have stopped the server this facade last knew; read the state again first.
            if not await self.backends.moved_from(client):
                raise
        return await call(self.backends.champion)

    async def score(self, applications: Sequence[Application]) -> Scored:
        """Score in one upstream call, count the decisions under the version that answered, watch drift."""
        try:
            start = time.perf_counter()
            rows = await self._on_champion(lambda client: client.predict(applications))
            PREDICTION_DURATION.observe(time.perf_counter() - start)
            run_id = _single_run(rows)
            version = await self.registry.version_for_run(run_id)
        except ModelRejectedInput:
            raise  # NB: the model is served; it refused this input
        except UpstreamError:
            self.model_loaded = False
            raise
        self.model_loaded = True
        for row in rows:
            PREDICTIONS.labels(row.prediction, version).inc()
        self.drift.observe(run_id, applications, [row.risk_score for row in rows])
        if self.shadow is not None:
            self.shadow.offer(applications, rows, version)
        return Scored(rows=rows, run_id=run_id, model_version=version)

    async def score_one(self, application: Application) -> ScoredOne:
        """Score one application, in whichever micro-batch it lands in when batching is on."""
        if self._batcher is not None:
            return await self._batcher.submit(application)
        (one,) = await self._score_each([application])
        return one

    async def _score_each(self, applications: Sequence[Application]) -> list[ScoredOne]:
        scored = await self.score(applications)
        return [ScoredOne(row, scored.model_version) for row in scored.rows]

    async def warm_up(self) -> Scored:
        """Ping, score the README's approved applicant and name its version; NotReady with the reason if not.

        NB: not counted in predictions_total nor added to the drift window: it is the service checking
        itself, not a client decision.
        """
        step = "ping"
        try:
            await self._on_champion(lambda client: client.ping())
            step = "warm-up prediction"
            rows = await self._on_champion(lambda client: client.predict([EXAMPLE_APPLICANTS["approved"]]))
            run_id = _single_run(rows)
            step = "version lookup"
            version = await self.registry.version_for_run(run_id)
        except UpstreamError as exc:
            self.model_loaded = False
            raise NotReady(f"{step} failed: {exc.detail}") from exc
        self.model_loaded = True
        return Scored(rows=rows, run_id=run_id, model_version=version)
