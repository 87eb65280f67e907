"""The gate a new scoring server must pass before any client request reaches it.

It answers ``/ping`` (checked before, by ``ScoringServer.wait_ready``); it decides the README's two
applicants APPROVED and REJECTED, as any reasonable model trained on the generator does; and the run
id it answers with is the expected version's, which the facade reports under that very version.
A challenger, which answers no client (its answers are only compared with the champion's), is held
to the first and last checks only: a model that decides differently is what a shadow is for.
The verdict is a reason for people and operators (a log line, the state's rollout reason), never
a body of the server's: those can echo the request and carry a stack trace.
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ValidationError

from model_code.schema import EXAMPLE_APPLICANTS, FEATURE_NAMES
from serving.registry import Registry, RegistryError, Version

INVOCATIONS = "/invocations"
# NB: the README's applicants and what any reasonable model decides for them.
EXPECTED = (("approved", "APPROVED"), ("rejected", "REJECTED"))
GATE_TIMEOUT_SECONDS = 30.0


class _Row(BaseModel):
    prediction: str
    model_run_id: str


class _Answer(BaseModel):
    predictions: list[_Row]


async def gate(base_url: str, registry: Registry, expected: Version, decisions: bool = True) -> str | None:
    """None when the server at ``base_url`` passes, else the reason it fails (``decisions``: check them)."""
    payload = {
        "dataframe_split": {
            "columns": list(FEATURE_NAMES),
            "data": [[EXAMPLE_APPLICANTS[name][f] for f in FEATURE_NAMES] for name, _ in EXPECTED],
        }
    }
    async with httpx.AsyncClient(base_url=base_url, timeout=GATE_TIMEOUT_SECONDS, trust_env=False) as http:
        try:
            response = await http.post(INVOCATIONS, json=payload)
        except httpx.HTTPError as exc:
            return f"/invocations failed ({type(exc).__name__})"
    if response.status_code != 200:
        return f"/invocations answered {response.status_code} to the README's applicants"
    try:
        rows = _Answer.model_validate_json(response.content).predictions
    except ValidationError:
        return "/invocations answered a body without a prediction and model_run_id per row"
    if len(rows) != len(EXPECTED):
        return f"/invocations answered {len(rows)} rows for {len(EXPECTED)}"
    for row, (name, decision) in zip(rows, EXPECTED, strict=True):
        if decisions and row.prediction != decision:
            return f"it decided the README's {name} applicant {row.prediction}, not {decision}"
    run_ids = {row.model_run_id for row in rows}
    if run_ids != {expected.run_id}:
        return f"it answered from run {', '.join(sorted(run_ids))}, not version {expected.version}'s run"
    try:
        reported = await registry.version_of_run(expected.run_id)
    except RegistryError as exc:
        return f"its run's version could not be confirmed: {exc}"
    if reported != expected.version:
        return f"its run maps to version {reported}, so its answers would not report {expected.version}"
    return None
