"""Adding an applicant field touches model_code/schema.py and nothing else: every stage follows it.

A copy of the code gets one more field (``num_inquiries``, with its reason code, its direction and
its policy step) in its schema and its two example applicants, and nothing more; then, in that
copy, the generator, the pipeline and its monotonic constraints, the fast path, the policy gate,
the pyfunc's checks, signature and reasons, the drift reference and the facade's request model,
reason catalogue and output parsing must all carry the new field. (The README's field table is
held to the schema by its own test.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NEW_FEATURE = """    Feature(
        "num_inquiries",
        "integer",
        "Hard credit inquiries in the last twelve months.",
        0,
        30,
        reason=Reason("NUM_INQUIRIES", "Number of recent credit inquiries"),
        direction="up",
        step=Step(offset=1),
    ),
"""

IN_THE_COPY = """
import json
import numpy as np
from fastapi.testclient import TestClient

import facade, model_code, training
from facade.contract import ScoredRow
from facade.core.config import Settings
from facade.drift import parse_reference
from facade.main import create_app
from model_code.fast import FastPipeline
from model_code.pyfunc import CreditScoreModel, InvalidApplicantData, model_input, model_metadata
from model_code.reasons import REASONS_BY_CODE, reason_for_column
from model_code.schema import EXAMPLE_APPLICANTS
from model_code.validation import validate
from training.data import TARGET, generate_applicants
from training.policy import policy_report
from training.reference import drift_reference
from training.train import build_pipeline, fit, monotonic_constraints, split

for package in (facade, model_code, training):
    assert package.__file__.startswith(COPY), package.__file__

frame = generate_applicants(3000, seed=1)
applicants = frame.drop(columns=[TARGET])
assert applicants["num_inquiries"].between(0, 30).all()
pipeline = fit(build_pipeline(10, 8, 5, seed=1), split(frame, seed=1).train)
encoded = list(pipeline.named_steps["preprocess"].get_feature_names_out())
assert "num_inquiries" in encoded and reason_for_column("num_inquiries") == "NUM_INQUIRIES"
assert monotonic_constraints()[encoded.index("num_inquiries")] == 1
assert REASONS_BY_CODE["NUM_INQUIRIES"].description == "Number of recent credit inquiries"
assert "num_inquiries" in [f["name"] for f in model_metadata()["features"]]

model = CreditScoreModel()
model.pipeline, model.threshold, model.run_id = pipeline, 0.5, "0" * 32
model.fast, model.inference = FastPipeline(pipeline), "fast"
checked = validate(model_input(applicants.head(500)))
np.testing.assert_array_equal(
    model.fast.explain(checked).risk, pipeline.predict_proba(checked.to_frame())[:, 1]
)
report = policy_report(lambda frame: model.fast.explain(validate(frame)).risk, applicants.head(300))
(inquiries,) = [check for check in report.fields if check.field == "num_inquiries"]
assert inquiries.moved == 300 - int((applicants.head(300)["num_inquiries"] == 30).sum())
assert report.violations == 0
out = model.predict(None, model_input(list(EXAMPLE_APPLICANTS.values())))
rows = [ScoredRow.model_validate(row) for row in out.to_dict("records")]
assert [row.prediction for row in rows] == ["APPROVED", "REJECTED"]
missing = {k: v for k, v in EXAMPLE_APPLICANTS["approved"].items() if k != "num_inquiries"}
try:
    model.predict(None, model_input([missing]))
    raise AssertionError("a missing num_inquiries was scored")
except InvalidApplicantData as refusal:
    assert json.loads(refusal.serialize_as_json())["violations"] == [
        {"field": "num_inquiries", "rule": "is required", "rows": []}
    ]

reference = drift_reference(applicants, pipeline.predict_proba(applicants)[:, 1])
assert "num_inquiries" in parse_reference(json.dumps(reference).encode())["features"]

with TestClient(create_app(Settings())) as client:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["ApplicationIn"]["properties"]["num_inquiries"]["maximum"] == 30
    assert "NUM_INQUIRIES" in schemas["ReasonPublic"]["properties"]["code"]["enum"]
    response = client.post("/api/v1/predict", json={**EXAMPLE_APPLICANTS["approved"], "num_inquiries": 31})
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"field": "num_inquiries", "rule": "must be an integer between 0 and 30"}
    ]
print("ok")
"""


def _with_the_new_field(schema: str) -> str:
    """schema.py with ``num_inquiries`` appended to FEATURES and to each example applicant."""
    features_end = schema.index("\n)\n", schema.index("FEATURES: Final"))
    schema = schema[: features_end + 1] + NEW_FEATURE + schema[features_end + 1 :]
    patched, count = re.subn(r'("total_debt": [0-9.]+,\n)', r'\1        "num_inquiries": 2,\n', schema)
    assert count == 2, "both example applicants end with total_debt"
    return patched


def test_a_new_field_in_the_schema_reaches_every_stage(tmp_path: Path) -> None:
    for package in ("model_code", "training", "facade"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    schema = tmp_path / "model_code" / "schema.py"
    schema.write_text(_with_the_new_field(schema.read_text()))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    result = subprocess.run(
        [sys.executable, "-c", f"COPY = {str(tmp_path)!r}\n" + IN_THE_COPY],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().endswith("ok")
