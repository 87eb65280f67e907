"""Turns scoring-server answers into versioned predictions: where the truthful model_version is decided.

The version is always mapped from the run id the scoring server returned in that very answer,
never taken from configuration or remembered from an earlier answer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from facade.core.errors import BadUpstreamResponse, ModelRejectedInput, NotReady, UpstreamError
from facade.core.metrics import MODEL_LOADED, PREDICTION_DURATION, PREDICTIONS
from facade.drift import DriftMonitor
from facade.registry import RegistryClient
from facade.scoring import ScoredRow, ScoringClient
from model_code.schema import EXAMPLE_APPLICANTS


@dataclass(frozen=True)
class Scored:
    """Rows scored in one upstream call, with the run and registered version that scored them."""

    rows: list[ScoredRow]
    run_id: str
    model_version: str


def _single_run(rows: Sequence[ScoredRow]) -> str:
    run_ids = {row.model_run_id for row in rows}
    if len(run_ids) != 1:
        raise BadUpstreamResponse("The scoring server's rows name different model runs.")
    return run_ids.pop()


async def score(
    scoring: ScoringClient,
    registry: RegistryClient,
    drift: DriftMonitor,
    applications: Sequence[Mapping[str, object]],
) -> Scored:
    """Score applications in one upstream call, count them under the version that answered, watch drift."""
    try:
        start = time.perf_counter()
        rows = await scoring.predict(applications)
        PREDICTION_DURATION.observe(time.perf_counter() - start)
        run_id = _single_run(rows)
        version = await registry.version_for_run(run_id)
    except ModelRejectedInput:
        raise  # NB: the model is served; it refused this input
    except UpstreamError:
        MODEL_LOADED.set(0)
        raise
    MODEL_LOADED.set(1)
    for row in rows:
        PREDICTIONS.labels(row.prediction, version).inc()
    drift.observe(run_id, applications, [row.risk_score for row in rows])
    return Scored(rows=rows, run_id=run_id, model_version=version)


@dataclass(frozen=True)
class ScoredOne:
    """One application's row and the registered version that scored it (what the batcher returns)."""

    row: ScoredRow
    model_version: str


async def score_each(
    scoring: ScoringClient,
    registry: RegistryClient,
    drift: DriftMonitor,
    applications: Sequence[Mapping[str, object]],
) -> list[ScoredOne]:
    """``score``, one result per application: the micro-batcher's upstream call."""
    scored = await score(scoring, registry, drift, applications)
    return [ScoredOne(row, scored.model_version) for row in scored.rows]


async def warm_up(scoring: ScoringClient, registry: RegistryClient) -> Scored:
    """Ping, score the README's approved applicant and name its version; NotReady with the reason if not.

    NB: not counted in predictions_total nor added to the drift window: it is the service checking
    itself, not a client decision.
    """
    step = "ping"
    try:
        await scoring.ping()
        step = "warm-up prediction"
        rows = await scoring.predict([EXAMPLE_APPLICANTS["approved"]])
        run_id = _single_run(rows)
        step = "version lookup"
        version = await registry.version_for_run(run_id)
    except UpstreamError as exc:
        MODEL_LOADED.set(0)
        raise NotReady(f"{step} failed: {exc.detail}") from exc
    MODEL_LOADED.set(1)
    return Scored(rows=rows, run_id=run_id, model_version=version)
