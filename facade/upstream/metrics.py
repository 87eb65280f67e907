"""Metric families of the calls to the scoring server and the registry, and of the micro-batcher."""

from __future__ import annotations

from typing import Literal, get_args

from prometheus_client import Counter, Gauge, Histogram

from facade.core.metrics import DURATION_BUCKETS

# The one list of upstream failure kinds: the label's values are bounded by it.
ErrorKind = Literal["connect", "timeout", "status", "bad_response", "registry", "circuit_open", "supervisor"]
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)

UPSTREAM_REQUEST_DURATION = Histogram(
    "upstream_request_duration_seconds",
    "Time of calls to the scoring server and the model registry, by endpoint.",
    ["endpoint"],
    buckets=DURATION_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "upstream_errors_total",
    f"Failed upstream calls, by kind: {', '.join(ERROR_KINDS)}.",
    ["kind"],
)
for _kind in ERROR_KINDS:
    UPSTREAM_ERRORS.labels(_kind)  # NB: every kind exported from the start, at 0
UPSTREAM_RETRIES = Counter(
    "upstream_retries_total",
    "Scoring server calls sent again after a connection failure (the request never reached the model).",
)
CIRCUIT_OPEN = Gauge(
    "circuit_breaker_open",
    "1 while the scoring server is known to be down and calls to it fail fast (open or half-open).",
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


def count_error(kind: ErrorKind) -> None:
    """One failed upstream call of ``kind``."""
    UPSTREAM_ERRORS.labels(kind).inc()
