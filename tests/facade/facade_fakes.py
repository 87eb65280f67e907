"""Stand-ins for the scoring server and the model registry, shared by the facade tests."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx

from model_code.schema import EXAMPLE_APPLICANTS

SCORING_URL = "http://scoring.test"
TRACKING_URI = "http://mlflow.test"
RUN_1 = "0123456789abcdef0123456789abcdef"
RUN_2 = "fedcba9876543210fedcba9876543210"
UNREGISTERED_RUN = "ffffffffffffffffffffffffffffffff"
# NB: what the mocked registry answers: run id -> registered versions of credit-score.
REGISTERED = {RUN_1: ["1"], RUN_2: ["2", "3"]}
APPROVED = EXAMPLE_APPLICANTS["approved"]
REJECTED = EXAMPLE_APPLICANTS["rejected"]


def scored(rejection: float, run_id: str = RUN_1) -> dict[str, object]:
    """One record as the pyfunc writes it (threshold 0.5)."""
    rejected = rejection >= 0.5
    return {
        "prediction": "REJECTED" if rejected else "APPROVED",
        "approval_probability": 1 - rejection,
        "rejection_probability": rejection,
        "risk_score": rejection,
        "confidence": rejection if rejected else 1 - rejection,
        "model_run_id": run_id,
    }


def risk(derogatory_marks: int) -> float:
    return min(0.05 + 0.2 * derogatory_marks, 0.95)


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
    match = re.fullmatch(r"name='credit-score' and run_id='([0-9a-f]{32})'", request.url.params["filter"])
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
