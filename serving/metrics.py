"""Metric families of the serving supervisor (its own ``/metrics``, scraped beside the facade's)."""

from __future__ import annotations

from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from model_code.rollout import RolloutOutcome

OUTCOMES: tuple[RolloutOutcome, ...] = get_args(RolloutOutcome)

ROLLOUTS = Counter(
    "credit_model_rollouts_total",
    "Attempts to serve a version an alias moved to: completed, start_failed (never answered /ping) or "
    "gate_failed (answered, failed the gate; the old version kept serving).",
    ["alias", "outcome"],
)
ROLLOUT_DURATION = Histogram(
    "credit_model_rollout_duration_seconds",
    "From seeing an alias move to the new server passing the gate and taking traffic.",
    ["alias"],
    buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300),
)
SERVED_VERSION = Gauge(
    "credit_model_served_version",
    "The registered version whose server takes the alias's traffic now (absent while none does).",
    ["alias"],
)
SERVER_EXITS = Counter(
    "credit_model_server_exits_total",
    "Scoring servers that exited while serving (the supervisor starts the same version again).",
    ["alias"],
)
DRAINING = Gauge("credit_model_servers_draining", "Old scoring servers kept until their users have let go.")
LOOP_ERRORS = Counter(
    "credit_model_supervisor_errors_total",
    "Unexpected errors of the supervisor's loops (follow-<alias>, reaper); each loop goes on at its next "
    "period. The registry being unreadable is not one of them.",
    ["loop"],
)


def declare(aliases: tuple[str, ...], loops: tuple[str, ...]) -> None:
    """Export every alias's and loop's counters from the start, at 0."""
    for alias in aliases:
        for outcome in OUTCOMES:
            ROLLOUTS.labels(alias, outcome)
        SERVER_EXITS.labels(alias)
    for loop in loops:
        LOOP_ERRORS.labels(loop)
