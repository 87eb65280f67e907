"""The scopes of the credit API: what a client may do, for tokens, API keys and certificates alike."""

from __future__ import annotations

SCOPE_PREDICT = "credit:predict"
SCOPE_DECISIONS_READ = "credit:decisions:read"
SCOPE_MODEL_READ = "credit:model:read"

# NB: the descriptions the OpenAPI document gives each scope of its OAuth2 scheme.
SCOPES = {
    SCOPE_PREDICT: "Score applications: POST /api/v1/predict and /api/v1/predict/batch.",
    SCOPE_DECISIONS_READ: "Read recorded decisions under /api/v1/decisions.",
    SCOPE_MODEL_READ: "Read the served model's information and card: GET /api/v1/model/info and /card.",
}
ALL_SCOPES = frozenset(SCOPES)
