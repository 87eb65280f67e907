"""HTTP metric families of the service, counted by ``facade.core.middleware.InstrumentationMiddleware``.

Module-level constants in the default registry. Labels stay bounded: the HTTP method (unknown ones
as OTHER), the endpoint as its route template (never the raw path) and the status code. The
service's own families live beside what they measure: ``facade.metrics`` (predictions, drift) and
``facade.upstream.metrics`` (calls to the scoring server and the registry).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# NB: sub-millisecond to seconds: a healthy one-row prediction takes a few milliseconds end to
# end, and the upstream read timeout is 5 s.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

HTTP_LABELS = ("method", "endpoint", "status")

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, endpoint (route template) and status code.",
    HTTP_LABELS,
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by method, endpoint (route template) and status code.",
    HTTP_LABELS,
    buckets=DURATION_BUCKETS,
)
HTTP_REQUESTS_IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being answered now.")
