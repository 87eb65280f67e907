"""The real `mlflow models serve` of the champion: same numbers for every input format, safe errors."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from model_code.pyfunc import model_input
from model_code.schema import EXAMPLE_APPLICANTS, FEATURE_NAMES
from model_code.tracking import RUN_ID_PATTERN
from scripts import commands
from scripts.processes import ManagedProcess, free_port
from tests.conftest import TrackingStore, project_env
from training.data import TARGET, generate_applicants

pytestmark = pytest.mark.integration

PROBABILITIES = ["approval_probability", "rejection_probability", "risk_score", "confidence"]


@pytest.fixture(scope="module")
def scoring_url(sqlite_store: TrackingStore) -> Iterator[str]:
    port = free_port()
    server = ManagedProcess(
        "scoring-server",
        commands.model_server("models:/credit-score@champion", "127.0.0.1", port),
        sqlite_store.root / "serve.log",
        env=project_env(MLFLOW_TRACKING_URI=sqlite_store.tracking_uri),
        cwd=sqlite_store.root,
    ).start()  # fmt: skip
    try:
        server.wait_http(f"http://127.0.0.1:{port}/ping", timeout=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def applicants() -> pd.DataFrame:
    sample = generate_applicants(200, seed=99).drop(columns=[TARGET])
    readme = pd.DataFrame(list(EXAMPLE_APPLICANTS.values()))
    return pd.concat([readme, sample], ignore_index=True)


@pytest.fixture(scope="module")
def in_process(sqlite_store: TrackingStore, applicants: pd.DataFrame) -> pd.DataFrame:
    client = MlflowClient(tracking_uri=sqlite_store.tracking_uri)
    version = client.get_model_version_by_alias("credit-score", "champion").version
    model = mlflow.pyfunc.load_model(client.get_model_version_download_uri("credit-score", version))
    predicted: pd.DataFrame = model.predict(model_input(applicants))
    return predicted


def _invocations(url: str, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{url}/invocations", timeout=60, **kwargs)  # type: ignore[arg-type]


def _frame(response: httpx.Response) -> pd.DataFrame:
    assert response.status_code == 200, response.text
    return pd.DataFrame(response.json()["predictions"])


def test_split_records_and_csv_give_the_in_process_numbers(
    scoring_url: str, applicants: pd.DataFrame, in_process: pd.DataFrame
) -> None:
    split = _invocations(
        scoring_url, json={"dataframe_split": json.loads(applicants.to_json(orient="split"))}
    )
    records = _invocations(scoring_url, json={"dataframe_records": applicants.to_dict("records")})
    csv = _invocations(
        scoring_url, content=applicants.to_csv(index=False), headers={"Content-Type": "text/csv"}
    )

    for response in (split, records, csv):
        served = _frame(response)
        assert served["prediction"].tolist() == in_process["prediction"].tolist()
        pd.testing.assert_frame_equal(served[PROBABILITIES], in_process[PROBABILITIES], rtol=0, atol=1e-12)


def test_readme_applicants_through_invocations(scoring_url: str) -> None:
    rows = [EXAMPLE_APPLICANTS["approved"], EXAMPLE_APPLICANTS["rejected"]]

    served = _frame(_invocations(scoring_url, json={"dataframe_records": rows}))

    assert served["prediction"].tolist() == ["APPROVED", "REJECTED"]
    assert served["model_run_id"].str.fullmatch(RUN_ID_PATTERN).all()


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("age", 35.5, "age must be an integer between 18 and 100"),
        ("age", "35", "age must be an integer between 18 and 100"),
        ("age", None, "age must be an integer between 18 and 100"),
        ("age", 101, "age must be an integer between 18 and 100"),
        ("income", -5000.0, "income must be a finite number between 0 and 10,000,000"),
        ("total_debt", None, "total_debt must be a finite number between 0 and 10,000,000"),
        ("loan_intent", "CASINO", "loan_intent must be one of"),
        ("home_ownership", "castle", "home_ownership must be one of"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_without_the_values(
    scoring_url: str, field: str, value: object, rule: str
) -> None:
    applicant = {**EXAMPLE_APPLICANTS["rejected"], field: value}

    response = _invocations(scoring_url, json={"dataframe_records": [applicant]})

    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert rule in body["message"]
    assert "stack_trace" not in body
    # Neither the bad value nor the applicant's other values (income 18000...) may come back.
    for echoed in ("18000", "25000", "30000", *([str(value)] if value is not None else [])):
        assert echoed not in response.text


@pytest.mark.parametrize("encoding", ["csv", "records", "split"])
def test_a_missing_column_is_named_without_echoing_any_value(scoring_url: str, encoding: str) -> None:
    rows = pd.DataFrame([{**EXAMPLE_APPLICANTS["rejected"], "income": 18077.0}]).drop(columns=["total_debt"])
    if encoding == "csv":
        buffer = io.StringIO()
        rows.to_csv(buffer, index=False)
        response = _invocations(scoring_url, content=buffer.getvalue(), headers={"Content-Type": "text/csv"})
    else:
        payload = (
            rows.to_dict("records") if encoding == "records" else json.loads(rows.to_json(orient="split"))
        )
        response = _invocations(scoring_url, json={f"dataframe_{encoding}": payload})

    assert response.status_code == 400
    assert response.json()["message"] == "Invalid applicant data: total_debt is required"
    for echoed in ("18077", "25000", "VENTURE"):
        assert echoed not in response.text


def test_mlflow_models_predict_scores_a_csv_as_written_by_pandas(
    sqlite_store: TrackingStore, applicants: pd.DataFrame, in_process: pd.DataFrame, tmp_path: Path
) -> None:
    """`mlflow models predict -i applicants.csv`: integers read back as int64, numbers as float64."""
    (tmp_path / "applicants.csv").write_text(applicants.to_csv(index=False))

    result = subprocess.run(
        [commands.venv_bin("mlflow"), "models", "predict", "-m", "models:/credit-score@champion",
         "-i", "applicants.csv", "-t", "csv", "-o", "scores.json", "--env-manager", "local"],
        cwd=tmp_path, env=project_env(MLFLOW_TRACKING_URI=sqlite_store.tracking_uri),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    served = pd.DataFrame(json.loads((tmp_path / "scores.json").read_text())["predictions"])
    assert served["prediction"].tolist() == in_process["prediction"].tolist()
    pd.testing.assert_frame_equal(served[PROBABILITIES], in_process[PROBABILITIES], rtol=0, atol=1e-12)


def test_an_int64_frame_in_split_format_scores_as_its_float64_twin(scoring_url: str) -> None:
    rows = pd.DataFrame([EXAMPLE_APPLICANTS["approved"], EXAMPLE_APPLICANTS["rejected"]])
    as_ints = rows.astype({"income": "int64", "loan_amount": "int64", "total_debt": "int64"})
    as_floats = rows.astype(dict.fromkeys(("age", "employment_length", "num_credit_lines"), "float64"))

    by_ints, by_floats = (
        _frame(_invocations(scoring_url, json={"dataframe_split": json.loads(f.to_json(orient="split"))}))
        for f in (as_ints, as_floats)
    )

    pd.testing.assert_frame_equal(by_ints, by_floats, check_exact=True)


def test_the_logged_model_records_the_applicant_schema(sqlite_store: TrackingStore) -> None:
    """The signature declares no inputs; the model's `features` metadata lists the applicant schema."""
    client = MlflowClient(tracking_uri=sqlite_store.tracking_uri)
    version = client.get_model_version_by_alias("credit-score", "champion").version
    logged = mlflow.pyfunc.load_model(client.get_model_version_download_uri("credit-score", version)).metadata

    assert logged.signature.inputs is None
    assert [f["name"] for f in logged.metadata["features"]] == list(FEATURE_NAMES)
