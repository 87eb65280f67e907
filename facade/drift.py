"""Drift, after scoring: recent applications compared with the served model's training distribution (PSI).

Every scored application (its fields and its ``risk_score``) enters a sliding window of the last
DRIFT_WINDOW_SIZE, which starts over whenever the scoring server answers from another run. At
scrape time ``/metrics`` fetches that run's ``drift_reference.json`` from the tracking server
(once per run) and the ``credit_feature_psi`` / ``credit_score_psi`` gauges are computed from the
window with ``model_code.drift.psi_by_feature``; below DRIFT_MIN_SAMPLES, or without a reference,
they are absent. The window holds applicant data: it is never logged, and nothing here fails a
prediction.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from facade.errors import RegistryUnavailable
from facade.upstream.registry import RegistryClient
from model_code.drift import REFERENCE_ARTIFACT, SCORE_KEY, psi_by_feature
from model_code.schema import FEATURES

logger = logging.getLogger(__name__)

# NB: a missing or broken reference is asked for again at most this often: a scrape every 15 s
# must not turn into a tracking-server call (and up to its deadlines) every 15 s.
REFERENCE_RETRY_SECONDS = 60.0

Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class _NumericBins(BaseModel):
    kind: Literal["numeric"]
    edges: list[Annotated[float, Field(allow_inf_nan=False)]]
    proportions: list[Share]

    @model_validator(mode="after")
    def _one_bin_more_than_edges(self) -> _NumericBins:
        if len(self.proportions) != len(self.edges) + 1 or self.edges != sorted(self.edges):
            raise ValueError("numeric bins need sorted edges and one proportion more than edges")
        return self


class _CategoryShares(BaseModel):
    kind: Literal["category"]
    categories: list[str]
    proportions: list[Share]

    @model_validator(mode="after")
    def _one_share_per_category(self) -> _CategoryShares:
        if len(self.proportions) != len(self.categories):
            raise ValueError("category shares need one proportion per category")
        return self


class _Reference(BaseModel):
    """``drift_reference.json`` as ``training/reference.py`` writes it."""

    features: dict[str, Annotated[_NumericBins | _CategoryShares, Field(discriminator="kind")]]
    score: _NumericBins


def parse_reference(body: bytes) -> dict[str, Any]:
    """The reference restricted to the schema's fields, as ``psi_by_feature`` reads it; else ValueError.

    NB: checked here, once per run, so that computing PSI at scrape time cannot fail on a malformed file.
    """
    try:
        reference = _Reference.model_validate_json(body)
    except ValidationError:
        raise ValueError("the drift reference breaks its format") from None
    features: dict[str, Any] = {}
    for feature in FEATURES:
        spec = reference.features.get(feature.name)
        if spec is None or (spec.kind == "category") == feature.is_numeric:
            raise ValueError(f"the drift reference has no {feature.kind} entry for {feature.name}")
        features[feature.name] = spec.model_dump()
    return {"features": features, "score": reference.score.model_dump()}


class DriftMonitor:
    """The window of recent scored applications and the served run's reference; PSI on demand.

    NB: no lock: the facade runs one event loop, and only ``refresh`` awaits.
    """

    def __init__(
        self,
        registry: RegistryClient,
        window_size: int,
        min_samples: int,
        *,
        retry_seconds: float = REFERENCE_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self.min_samples = min_samples
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._window: deque[dict[str, object]] = deque(maxlen=window_size)
        self._run_id: str | None = None
        self._references: dict[str, dict[str, Any]] = {}
        self._failed_at: dict[str, float] = {}
        # NB: PSI is recomputed only when the window changed since the last scrape.
        self._observed = 0
        self._computed: tuple[int, str, dict[str, float]] | None = None

    def observe(
        self, run_id: str, applications: Sequence[Mapping[str, object]], risks: Sequence[float]
    ) -> None:
        """Add scored applications; another run starts a new window, judged against that run's reference."""
        if run_id != self._run_id:
            self._window.clear()
            self._run_id = run_id
        if len(applications) != len(risks):
            raise ValueError("one risk per application")
        # NB: only the rows the window keeps: a 10,000-row batch would otherwise copy every
        # application into a dict the deque drops at once.
        n_rows = len(applications)
        keep = n_rows if self._window.maxlen is None else min(n_rows, self._window.maxlen)
        for i in range(n_rows - keep, n_rows):
            self._window.append({**applications[i], SCORE_KEY: risks[i]})
        self._observed += len(applications)

    async def refresh(self) -> None:
        """Fetch the served run's reference when the window is long enough and it is not known yet.

        Never raises for an unavailable or malformed reference: it logs why (no applicant data is
        involved) and the gauges stay absent until a later try succeeds.
        """
        run_id = self._run_id
        if run_id is None or run_id in self._references or len(self._window) < self.min_samples:
            return
        failed_at = self._failed_at.get(run_id)
        if failed_at is not None and self._clock() - failed_at < self.retry_seconds:
            return
        try:
            body = await self._registry.run_artifact(run_id, REFERENCE_ARTIFACT)
            self._references[run_id] = parse_reference(body)
        except RegistryUnavailable as exc:
            self._failed(run_id, exc.detail)
        except ValueError as exc:
            self._failed(run_id, str(exc))
        else:
            self._failed_at.pop(run_id, None)

    def _failed(self, run_id: str, why: str) -> None:
        self._failed_at[run_id] = self._clock()
        logger.warning(
            "drift gauges off for run %s: %s not loaded (%s); retrying in %.0f s",
            run_id,
            REFERENCE_ARTIFACT,
            why,
            self.retry_seconds,
        )

    def psi(self) -> dict[str, float] | None:
        """PSI of every schema field and of the risk score over the window; None while it cannot be told."""
        run_id = self._run_id
        reference = self._references.get(run_id) if run_id is not None else None
        if run_id is None or reference is None or len(self._window) < self.min_samples:
            return None
        if self._computed is None or self._computed[:2] != (self._observed, run_id):
            self._computed = (self._observed, run_id, psi_by_feature(reference, self._window))
        return self._computed[2]
