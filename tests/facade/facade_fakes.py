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
RUN_V2 = "22222222222222222222222222222222"
RUN_CHALLENGER = "cccccccccccccccccccccccccccccccc"
UNREGISTERED_RUN = "ffffffffffffffffffffffffffffffff"
# NB: what the mocked registry answers: run id -> registered versions of credit-score.
REGISTERED = {RUN_1: ["1"], RUN_2: ["2", "3"], RUN_V2: ["2"], RUN_CHALLENGER: ["4"]}
# The serving supervisor and the scoring servers it names (see FakeSupervisor).
SUPERVISOR_URL = "http://supervisor.test"
V1_URL = "http://scoring-v1.test"
V2_URL = "http://scoring-v2.test"
CHALLENGER_URL = "http://scoring-challenger.test"
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


def fake_model(run_id: str = RUN_1, shift: float = 0.0) -> Callable[[httpx.Request], httpx.Response]:
    """A scoring server stand-in, one record per row: each derogatory mark adds 0.2 to the risk.

    ``shift`` moves every risk (kept within 0.01 and 0.99): another model's view of the same applicants.
    """

    def respond(request: httpx.Request) -> httpx.Response:
        split = json.loads(request.content)["dataframe_split"]
        marks = split["columns"].index("derogatory_marks")
        risks = [min(max(risk(row[marks]) + shift, 0.01), 0.99) for row in split["data"]]
        return httpx.Response(200, json={"predictions": [scored(r, run_id) for r in risks]})

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


def backend(version: str, run_id: str, url: str) -> dict[str, object]:
    """One scoring server as the supervisor's state names it (model_code.rollout.Backend)."""
    return {"version": version, "run_id": run_id, "url": url, "pid": 4242, "since": "2026-12-01T10:00:00Z"}


V1 = backend("1", RUN_1, V1_URL)
V2 = backend("2", RUN_V2, V2_URL)
CHALLENGER = backend("4", RUN_CHALLENGER, CHALLENGER_URL)


def rollout(version: str, previous: str | None, state: str, reason: str) -> dict[str, object]:
    """The champion alias's latest rollout as the supervisor's state has it (model_code.rollout.Rollout)."""
    finished = state in ("completed", "failed")
    return {
        "alias": "champion",
        "version": version,
        "previous_version": previous,
        "state": state,
        "reason": reason,
        "started_at": "2026-12-01T10:00:00Z",
        "finished_at": "2026-12-01T10:00:12Z" if finished else None,
        "start_seconds": 12.0 if state == "completed" else None,
    }


class FakeSupervisor:
    """The serving supervisor's ``GET /state``: the state a test sets, and the facades' reports of use."""

    def __init__(self) -> None:
        self.state: dict[str, object] = {"model_name": "credit-score", "champion_alias": "champion"}
        self.reports: list[set[str]] = []
        self.status = 200

    def serve(
        self,
        champion: dict[str, object] | None,
        challenger: dict[str, object] | None = None,
        latest: dict[str, object] | None = None,
    ) -> None:
        self.state = {
            "model_name": "credit-score",
            "champion_alias": "champion",
            "champion": champion,
            "challenger": challenger,
            "draining": [],
            "rollouts": {"champion": latest} if latest else {},
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if "client" in request.url.params:
            self.reports.append({url for url in request.url.params.get("using", "").split(",") if url})
        if self.status != 200:
            return httpx.Response(self.status, text="unavailable")
        return httpx.Response(200, json=self.state)
