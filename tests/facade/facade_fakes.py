"""Stand-ins for the scoring server and the model registry, shared by the facade tests.

Only the facade's dependencies (and model_code's stdlib modules) are imported: what training
would compute (a drift reference, generated applicants) is read from ``data/``, recorded by
``tests/model/test_facade_recordings.py``, which also holds it to what training writes now.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from model_code.drift import REFERENCE_ARTIFACT
from model_code.reasons import REASONS_BY_CODE, credit_score
from model_code.schema import EXAMPLE_APPLICANTS
from model_code.tracking import MODEL_CARD_ARTIFACT, RUN_ID_PATTERN

SCORING_URL = "http://scoring.test"
TRACKING_URI = "http://mlflow.test"
RUN_1 = "0123456789abcdef0123456789abcdef"
RUN_2 = "fedcba9876543210fedcba9876543210"
UNREGISTERED_RUN = "ffffffffffffffffffffffffffffffff"
# NB: what the mocked registry answers: run id -> registered versions of credit-score.
REGISTERED = {RUN_1: ["1"], RUN_2: ["2", "3"]}
APPROVED = EXAMPLE_APPLICANTS["approved"]
REJECTED = EXAMPLE_APPLICANTS["rejected"]
DATA = Path(__file__).resolve().parent / "data"
REFERENCE_FILE = DATA / "drift_reference.json"
APPLICANTS_FILE = DATA / "applicants.json"


BASE_RISK = 0.05


def reasons(rejection: float) -> list[dict[str, object]]:
    """Reasons as the pyfunc writes them: what raised the risk above the base, largest first."""
    added = rejection - BASE_RISK
    if added <= 0:
        return []
    shares = (("DEROGATORY_MARKS", 0.75), ("CREDIT_HISTORY_LENGTH", 0.25))
    return [
        {"code": code, "description": REASONS_BY_CODE[code].description, "contribution": added * share}
        for code, share in shares
    ]


def scored(rejection: float, run_id: str = RUN_1) -> dict[str, Any]:
    """One record as the pyfunc writes it (threshold 0.5)."""
    rejected = rejection >= 0.5
    return {
        "prediction": "REJECTED" if rejected else "APPROVED",
        "approval_probability": 1 - rejection,
        "rejection_probability": rejection,
        "risk_score": rejection,
        "confidence": rejection if rejected else 1 - rejection,
        "credit_score": credit_score(rejection),
        "reasons": reasons(rejection),
        "model_run_id": run_id,
    }


def risk(derogatory_marks: int) -> float:
    return min(BASE_RISK + 0.2 * derogatory_marks, 0.95)


def fake_model(run_id: str = RUN_1) -> Callable[[httpx.Request], httpx.Response]:
    """A scoring server stand-in, one record per row: each derogatory mark adds 0.2 to the risk."""

    def respond(request: httpx.Request) -> httpx.Response:
        split = json.loads(request.content)["dataframe_split"]
        marks = split["columns"].index("derogatory_marks")
        return httpx.Response(
            200, json={"predictions": [scored(risk(row[marks]), run_id) for row in split["data"]]}
        )

    return respond


def search_versions(request: httpx.Request) -> httpx.Response:
    match = re.fullmatch(
        rf"name='credit-score' and run_id='({RUN_ID_PATTERN})'", request.url.params["filter"]
    )
    assert match, "the registry filter must name the model and one run id"
    run_id = match.group(1)
    versions = [{"name": "credit-score", "version": v, "run_id": run_id} for v in REGISTERED.get(run_id, [])]
    return httpx.Response(200, json={"model_versions": versions} if versions else {})


RUN_BODY = {
    "run": {
        "info": {"run_id": RUN_1, "status": "FINISHED"},
        "data": {
            "metrics": [
                {"key": "test_roc_auc", "value": 0.91, "timestamp": 0, "step": 0},
                {"key": "test_f1", "value": 0.8, "timestamp": 0, "step": 0},
                {"key": "train_roc_auc", "value": 0.99, "timestamp": 0, "step": 0},
            ],
            "params": [
                {"key": "decision_threshold", "value": "0.45"},
                {"key": "n_estimators", "value": "100"},
            ],
            "tags": [],
        },
    }
}


MODEL_CARD = (
    "# Model card: credit-score\n\n## Intended use\nTests.\n\n## Fairness\n| band | approval rate |\n"
)


@cache
def reference_body() -> bytes:
    """A drift reference as training writes it: generated applicants and this fake model's risk on them."""
    return REFERENCE_FILE.read_bytes()


@cache
def _pool() -> tuple[dict[str, object], ...]:
    recorded = json.loads(APPLICANTS_FILE.read_text())
    return tuple(dict(zip(recorded["columns"], row, strict=True)) for row in recorded["data"])


def generated_applicants(n: int, seed: int) -> list[dict[str, object]]:
    """``n`` distinct applicants drawn (by ``seed``) from a pool the generator made: like traffic."""
    return [dict(row) for row in random.Random(seed).sample(_pool(), n)]


def run_artifacts(request: httpx.Request) -> httpx.Response:
    """The tracking server's /get-artifact: the drift reference and model card of every registered run."""
    files = {REFERENCE_ARTIFACT: reference_body(), MODEL_CARD_ARTIFACT: MODEL_CARD.encode()}
    run_id, path = request.url.params["run_uuid"], request.url.params["path"]
    if run_id not in REGISTERED or path not in files:
        return httpx.Response(
            404, json={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "No such artifact"}
        )
    return httpx.Response(200, content=files[path], headers={"Content-Type": "text/plain"})
