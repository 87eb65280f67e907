"""Turns scoring-server answers into versioned predictions: where the truthful model_version is decided.

The version is always mapped from the run id the scoring server returned in that very answer,
never taken from configuration or remembered from an earlier answer. Routes call the one
``PredictionService`` the app owns; it calls the champion's scoring server (whichever
``facade.upstream.backends`` names now), counts decisions, feeds the drift window, offers a sample
to the challenger's shadow and knows whether the model was last seen served. With decision
records on, ``decide`` and ``decide_one`` record every decision (``facade.records``) before they
return it: a decision whose record cannot be written is refused with RecordUnavailable (503), and
is then neither counted, nor watched for drift, nor shadowed (only a decision returned is).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from facade.contract import ScoredRow
from facade.drift import DriftMonitor
from facade.errors import BadUpstreamResponse, ModelRejectedInput, ModelUnavailable, NotReady, UpstreamError
from facade.metrics import PREDICTION_DURATION, PREDICTIONS
from facade.records.record import DecisionDraft
from facade.records.store import DecisionStore
from facade.shadow import Shadow
from facade.upstream.backends import ScoringBackends
from facade.upstream.batching import MicroBatcher
from facade.upstream.registry import RegistryClient
from facade.upstream.scoring import ScoringClient
from model_code.schema import EXAMPLE_APPLICANTS, SCHEMA_VERSION

Application = Mapping[str, object]
Answer = TypeVar("Answer")


@dataclass(frozen=True)
class Scored:
    """Rows scored in one upstream call, with the run and registered version that scored them."""

    rows: list[ScoredRow]
    run_id: str
    model_version: str
    # The run's decision threshold, what each record names (None when records are off, or the run
    # logged none).
    decision_threshold: float | None = None


@dataclass(frozen=True)
class ScoredOne:
    """One application's row and the registered version that scored it (what the batcher returns)."""

    row: ScoredRow
    run_id: str
    model_version: str
    decision_threshold: float | None = None


@dataclass(frozen=True)
class Submission:
    """One application to decide, with what its decision record needs besides the model's answer."""

    # The validated values, what the model scores.
    application: Application
    # The applicant's fields as the client sent them (JSON values), what the record keeps.
    entered: Mapping[str, object]
    request_id: str
    # The principal's name: who asked (never a secret).
    client: str


@dataclass(frozen=True)
class Decision:
    """One decision as answered: the row, the version that scored it, its id and recorded time."""

    row: ScoredRow
    model_version: str
    application_id: UUID
    timestamp: datetime


@dataclass(frozen=True)
class Decisions:
    """The decisions of one batch request, in input order, scored by one version."""

    decisions: list[Decision]
    model_version: str


@dataclass(frozen=True)
class Batching:
    """How single predictions are coalesced (the MICROBATCH_* settings)."""

    max_rows: int
    max_wait: float
    max_concurrency: int


# NB: the version (4) and variant (RFC 4122) bits of a UUID4, over 128 random bits.
_UUID4_KEEP = ~(0xF000 << 64) & ~(0xC000 << 48)
_UUID4_SET = (4 << 76) | (0x8000 << 48)


def application_ids(count: int) -> list[UUID]:
    """``count`` random UUID4s, as ``uuid.uuid4`` makes them, from one read of the OS's random source.

    NB: uuid4() reads 16 bytes a call and checks its arguments: for a 10,000-row batch, 38 ms
    against 20 ms here.
    """
    random = os.urandom(16 * count)
    return [
        UUID(int=(int.from_bytes(random[i : i + 16]) & _UUID4_KEEP) | _UUID4_SET)
        for i in range(0, 16 * count, 16)
    ]


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
        records: DecisionStore | None = None,
        shadow: Shadow | None = None,
    ) -> None:
        self.backends = backends
        self.registry = registry
        self.drift = drift
        self.records = records
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
        """Score in one upstream call and name the version that answered (and, with records on, the
        run's decision threshold). With records off its decisions are counted and watched here."""
        try:
            start = time.perf_counter()
            rows = await self._on_champion(lambda client: client.predict(applications))
            PREDICTION_DURATION.observe(time.perf_counter() - start)
            run_id = _single_run(rows)
            version = await self.registry.version_for_run(run_id)
            # NB: here, beside the version (read once a run, one request shared by concurrent
            # callers), not while recording: nothing then suspends between the batcher's answer
            # and the append, so a micro-batch's records share one transaction even just after a
            # rollout, and a registry blip refuses a decision before it is recorded, never after.
            threshold = await self.registry.decision_threshold(run_id) if self.records is not None else None
        except ModelRejectedInput:
            raise  # NB: the model is served; it refused this input
        except UpstreamError:
            self.model_loaded = False
            raise
        self.model_loaded = True
        if self.records is None:
            self._observe(applications, rows, run_id, version)
        return Scored(rows=rows, run_id=run_id, model_version=version, decision_threshold=threshold)

    def _observe(
        self, applications: Sequence[Application], rows: Sequence[ScoredRow], run_id: str, version: str
    ) -> None:
        """Count decisions about to be returned, add them to the drift window, offer the shadow a sample."""
        # NB: one increment a decision label, not one a row (a label lookup costs ~1.5 µs).
        for prediction, count in Counter(row.prediction for row in rows).items():
            PREDICTIONS.labels(prediction, version).inc(count)
        self.drift.observe(run_id, applications, [row.risk_score for row in rows])
        if self.shadow is not None:
            self.shadow.offer(applications, rows, version)

    async def score_one(self, application: Application) -> ScoredOne:
        """Score one application, in whichever micro-batch it lands in when batching is on."""
        if self._batcher is not None:
            return await self._batcher.submit(application)
        (one,) = await self._score_each([application])
        return one

    async def _score_each(self, applications: Sequence[Application]) -> list[ScoredOne]:
        scored = await self.score(applications)
        return [
            ScoredOne(row, scored.run_id, scored.model_version, scored.decision_threshold)
            for row in scored.rows
        ]

    async def decide(self, submissions: Sequence[Submission]) -> Decisions:
        """Score a batch in one upstream call and record its decisions in one transaction."""
        scored = await self.score([submission.application for submission in submissions])
        decisions = await self._record(
            submissions, scored.rows, scored.run_id, scored.model_version, scored.decision_threshold
        )
        return Decisions(decisions, scored.model_version)

    async def decide_one(self, submission: Submission) -> Decision:
        """Score one application (micro-batched) and record its decision.

        NB: nothing may suspend between the batcher's answer and the append (the threshold comes
        with the answer, from ``score``): the callers of one micro-batch then all queue their
        records before the store's writer runs, and share its transaction.
        """
        one = await self.score_one(submission.application)
        (decision,) = await self._record(
            [submission], [one.row], one.run_id, one.model_version, one.decision_threshold
        )
        return decision

    async def _record(
        self,
        submissions: Sequence[Submission],
        rows: Sequence[ScoredRow],
        run_id: str,
        version: str,
        threshold: float | None,
    ) -> list[Decision]:
        if self.records is None:
            at = datetime.now(UTC)
            return [
                Decision(row, version, i, at) for row, i in zip(rows, application_ids(len(rows)), strict=True)
            ]
        drafts = [
            DecisionDraft(
                application_id=application_id,
                request_id=submission.request_id,
                client=submission.client,
                model_name=self.registry.model_name,
                model_version=version,
                model_run_id=run_id,
                prediction=row.prediction,
                approval_probability=row.approval_probability,
                rejection_probability=row.rejection_probability,
                risk_score=row.risk_score,
                confidence=row.confidence,
                credit_score=row.credit_score,
                decision_threshold=threshold,
                reasons=[
                    {
                        "code": reason["code"],
                        "description": reason["description"],
                        "contribution": reason["contribution"],
                    }
                    for reason in row.reasons
                ],
                application=submission.entered,
                schema_version=SCHEMA_VERSION,
            )
            for submission, row, application_id in zip(
                submissions, rows, application_ids(len(rows)), strict=True
            )
        ]
        records = await self.records.append(drafts)
        # NB: only now, the records written: a decision refused (503) is not counted, watched or shadowed.
        self._observe([submission.application for submission in submissions], rows, run_id, version)
        return [
            Decision(row, version, record.application_id, record.timestamp)
            for row, record in zip(rows, records, strict=True)
        ]

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
