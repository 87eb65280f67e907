"""Metric families of who calls and how much: refused credentials by reason, refused requests by client.

Labels stay bounded: ``reason`` is one of ``AUTH_FAILURE_REASONS``; ``client`` is a name from the
configuration (API key names, RATE_LIMITS_BY_CLIENT, TLS_CLIENTS_FILE) or ``anonymous``, and every
other client (a token subject or a certificate nobody configured) counts as ``other``.
"""

from __future__ import annotations

from typing import Literal, get_args

from prometheus_client import Counter

from facade.core.tokens import TokenFailure

AuthFailure = (
    TokenFailure
    | Literal["missing", "unknown_key", "keys_unavailable", "certificate_name", "insufficient_scope"]
)
AUTH_FAILURE_REASONS: tuple[str, ...] = tuple(
    reason for member in get_args(AuthFailure) for reason in get_args(member)
)
OTHER_CLIENT = "other"

AUTH_FAILURES = Counter(
    "credit_auth_failures_total",
    "Requests refused with 401, 403 or 503 for their credentials, by reason.",
    ["reason"],
)
RATE_LIMITED = Counter(
    "credit_rate_limited_total",
    "Requests refused with 429 by the client's rate limit, by client (configured names; others as other).",
    ["client"],
)
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "credit_rate_limit_storage_errors_total",
    "Failed calls to the shared rate-limit store (Redis); each starts a few seconds of counting per replica.",
)

# NB: every reason from the start, so that a rate() over them is 0 rather than absent.
for _reason in AUTH_FAILURE_REASONS:
    AUTH_FAILURES.labels(_reason)
