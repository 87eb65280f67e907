"""Metric families of the decision records: writes by outcome, the group-commit time, purges."""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter, Histogram

from facade.core.metrics import DURATION_BUCKETS

# written: committed before its decision was returned; failed: its transaction failed or timed
# out; refused: not attempted because the database is known to be down (circuit open). A failed or
# refused record's decision is answered 503, never returned.
Outcome = Literal["written", "failed", "refused"]
OUTCOMES: tuple[Outcome, ...] = ("written", "failed", "refused")

RECORDS = Counter(
    "credit_decision_records",
    "Decision records by outcome: written (then returned), failed or refused (then answered 503).",
    ["outcome"],
)
for _outcome in OUTCOMES:
    RECORDS.labels(_outcome)

RECORD_WRITE_SECONDS = Histogram(
    "credit_decision_record_write_seconds",
    "Time of one group-commit transaction of decision records (every record pending at its start).",
    buckets=DURATION_BUCKETS,
)

RECORDS_PURGED = Counter(
    "credit_decision_records_purged",
    "Decision records deleted by the retention purge (older than DECISION_RETENTION_DAYS).",
)


def count(outcome: Outcome, records: int) -> None:
    RECORDS.labels(outcome).inc(records)
