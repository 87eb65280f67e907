"""A decision record: what the service hands the store, and what the store keeps and returns.

``DecisionDraft`` is a decision as ``PredictionService`` knows it once the model has answered;
the store stamps it with its place in the chain (``seq``), the time it was recorded and the two
hashes, which makes it a ``DecisionRecord``. ``hashed_fields`` is the one list of what the hash
covers (``facade.records.chain`` says how it is encoded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from facade.records.chain import timestamp_text


@dataclass(frozen=True, slots=True)
class DecisionDraft:
    """One decision before it is recorded."""

    application_id: UUID
    request_id: str
    # NB: the principal's name (an API key's name, a token's subject, "anonymous"), never a secret.
    client: str
    model_name: str
    model_version: str
    model_run_id: str
    prediction: str
    approval_probability: float
    rejection_probability: float
    risk_score: float
    confidence: float
    credit_score: int
    decision_threshold: float | None
    # Each {"code", "description", "contribution"}, largest contribution first, as answered.
    reasons: Sequence[Mapping[str, Any]]
    # The applicant's fields as the client sent them (JSON values, after validation).
    application: Mapping[str, Any]
    schema_version: str


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision as recorded: the draft's fields, its place in the chain and its hashes."""

    seq: int
    application_id: UUID
    timestamp: datetime
    request_id: str
    client: str
    model_name: str
    model_version: str
    model_run_id: str
    prediction: str
    approval_probability: float
    rejection_probability: float
    risk_score: float
    confidence: float
    credit_score: int
    decision_threshold: float | None
    reasons: Sequence[Mapping[str, Any]]
    application: Mapping[str, Any]
    schema_version: str
    prev_hash: str
    record_hash: str


def hashed_fields(
    draft: DecisionDraft | DecisionRecord, seq: int, timestamp: datetime, prev_hash: str
) -> dict[str, Any]:
    """The fields ``record_hash`` covers, as JSON values: every field of the record but the hash itself."""
    return {
        "seq": seq,
        "application_id": str(draft.application_id),
        "timestamp": timestamp_text(timestamp),
        "request_id": draft.request_id,
        "client": draft.client,
        "model_name": draft.model_name,
        "model_version": draft.model_version,
        "model_run_id": draft.model_run_id,
        "prediction": draft.prediction,
        "approval_probability": draft.approval_probability,
        "rejection_probability": draft.rejection_probability,
        "risk_score": draft.risk_score,
        "confidence": draft.confidence,
        "credit_score": draft.credit_score,
        "decision_threshold": draft.decision_threshold,
        "reasons": [dict(reason) for reason in draft.reasons],
        "application": dict(draft.application),
        "schema_version": draft.schema_version,
        "prev_hash": prev_hash,
    }
