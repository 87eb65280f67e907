"""Metric families of the service's predictions and of drift: module-level constants in the default registry.

Labels stay bounded: the decision, the registered model version that scored it, and schema field
names. The gauges mirror state through ``set_function``, bound by the app at startup
(``facade.main``); the drift families are computed at scrape time by ``DriftCollector``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from facade.core.metrics import DURATION_BUCKETS
from model_code.drift import SCORE_KEY
from model_code.schema import FEATURE_NAMES

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)

PREDICTIONS = Counter(
    "predictions_total",
    "Decisions returned, by decision and the registered model version that scored them.",
    ["result", "model_version"],
)
PREDICTION_DURATION = Histogram(
    "prediction_duration_seconds",
    "Time of the scoring server call for one predict or batch request.",
    buckets=DURATION_BUCKETS,
)
BATCH_PREDICTION_SIZE = Histogram(
    "batch_prediction_size",
    "Applications per batch request.",
    buckets=BATCH_SIZE_BUCKETS,
)
MODEL_LOADED = Gauge(
    "model_loaded",
    "1 when the last readiness check or prediction found the model served and its version known.",
)
PREDICTIONS_IN_FLIGHT = Gauge(
    "predictions_in_flight",
    "Predict and batch requests being answered now (at most MAX_IN_FLIGHT).",
)
PREDICTIONS_SHED = Counter(
    "predictions_shed_total",
    "Predict and batch requests refused with 503 because MAX_IN_FLIGHT were already in flight.",
)


PsiSource = Callable[[], Mapping[str, float] | None]


class DriftCollector(Collector):
    """``credit_feature_psi{feature}`` and ``credit_score_psi``, computed when Prometheus scrapes.

    The app attaches its drift monitor's ``psi`` for its lifetime. The families are always declared
    (HELP and TYPE); their samples are absent while the source has no answer (too few recent
    applications, or no reference for the served model), so that an alert never fires on a
    number computed from nothing.
    """

    def __init__(self) -> None:
        self._source: PsiSource | None = None

    def attach(self, source: PsiSource) -> None:
        self._source = source

    def detach(self, source: PsiSource) -> None:
        if self._source == source:
            self._source = None

    def describe(self) -> Iterator[Metric]:
        return iter(self._families(None))

    def collect(self) -> Iterator[Metric]:
        return iter(self._families(self._source() if self._source is not None else None))

    @staticmethod
    def _families(psi: Mapping[str, float] | None) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        features = GaugeMetricFamily(
            "credit_feature_psi",
            "Population stability index of each applicant field over the last DRIFT_WINDOW_SIZE scored "
            "applications against the served model's training data (0.1 moderate, 0.25 significant shift).",
            labels=["feature"],
        )
        score = GaugeMetricFamily(
            "credit_score_psi",
            "Population stability index of the risk score over the same window against the scores the "
            "model gave its held-out test applicants.",
        )
        if psi is not None:
            for name in FEATURE_NAMES:
                if name in psi:
                    features.add_metric([name], psi[name])
            if SCORE_KEY in psi:
                score.add_metric([], psi[SCORE_KEY])
        return features, score


DRIFT_PSI = DriftCollector()
REGISTRY.register(DRIFT_PSI)


# NB: challenger minus champion probability of default lies in [-1, 1]; most pairs of models disagree
# by a few points at most, so the buckets are finest around 0.
RISK_DELTA_BUCKETS = (
    -0.5,
    -0.25,
    -0.1,
    -0.05,
    -0.02,
    -0.01,
    -0.001,
    0.001,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
AGREEMENTS = ("same", "only_champion_approves", "only_challenger_approves")

SHADOW_SAMPLED = Counter(
    "credit_shadow_sampled_total",
    "Scored applications picked (at SHADOW_SAMPLE_RATE) to be scored by the challenger too.",
)
SHADOW_COMPARISONS = Counter(
    "credit_shadow_comparisons_total",
    "Sampled applications the challenger scored, by how its decision compares with the champion's.",
    ["agreement"],
)
for _agreement in AGREEMENTS:
    SHADOW_COMPARISONS.labels(_agreement)  # NB: every value exported from the start, at 0
SHADOW_DROPPED = Counter(
    "credit_shadow_dropped_total",
    "Sampled applications not compared because SHADOW_QUEUE_SIZE were already waiting for the challenger.",
)
SHADOW_FAILED = Counter(
    "credit_shadow_failed_total",
    "Sampled applications the challenger did not score: down, too slow, an error, or no longer served.",
)
SHADOW_RISK_DELTA = Histogram(
    "credit_shadow_risk_delta",
    "Challenger minus champion probability of default, per compared application.",
    buckets=RISK_DELTA_BUCKETS,
)
SHADOW_DURATION = Histogram(
    "credit_shadow_request_duration_seconds",
    "Time of the challenger's scoring calls, made off the request path.",
    buckets=DURATION_BUCKETS,
)
SHADOW_QUEUED = Gauge("credit_shadow_queued", "Sampled applications waiting for the challenger now.")
