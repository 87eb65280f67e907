"""Prometheus metric families of the facade: module-level constants in the default registry.

Labels stay bounded: route templates (never raw paths), HTTP methods, status codes, result,
registered model version and schema field names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from model_code.drift import SCORE_KEY
from model_code.schema import FEATURE_NAMES

# NB: sub-millisecond to seconds: a healthy one-row prediction takes about 20 ms end to end,
# and the upstream read timeout is 5 s.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=DURATION_BUCKETS,
)
HTTP_REQUESTS_IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being answered now.")

PREDICTIONS = Counter(
    "predictions_total",
    "Applications scored, by decision and the registered model version that scored them.",
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

UPSTREAM_REQUEST_DURATION = Histogram(
    "upstream_request_duration_seconds",
    "Time of calls to the scoring server and the model registry, by endpoint.",
    ["endpoint"],
    buckets=DURATION_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "upstream_errors_total",
    "Failed upstream calls, by kind: connect, timeout, status, bad_response, registry, circuit_open.",
    ["kind"],
)

MICROBATCH_SIZE = Histogram(
    "microbatch_size",
    "Single predictions coalesced into one scoring-server call by the micro-batcher.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
MICROBATCH_QUEUE_WAIT = Histogram(
    "microbatch_queue_wait_seconds",
    "Time a single prediction waited in the micro-batcher before its call was sent.",
    buckets=DURATION_BUCKETS,
)
UPSTREAM_RETRIES = Counter(
    "upstream_retries_total",
    "Scoring server calls sent again after a connection failure (the request never reached the model).",
)
CIRCUIT_OPEN = Gauge(
    "circuit_breaker_open",
    "1 while the scoring server is known to be down and calls to it fail fast (open or half-open).",
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
