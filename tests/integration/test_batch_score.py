"""Batch scoring on real Spark (local[1]): the MLproject's ``batch_score`` against in-process predict.

Every job runs in its own process group (its JVM included) and is stopped when the test ends.
"""

from __future__ import annotations

import datetime
import json
import shutil
from decimal import Decimal
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import PyFuncModel
from mlflow.tracking import MlflowClient

from scripts import commands
from scripts.processes import PROJECT_ROOT, ManagedProcess
from tests.conftest import TrackingStore, project_env
from training.data import TARGET, generate_applicants

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("java") is None,
        reason="Spark needs a Java 17 runtime (Debian's openjdk-17-jre-headless, which .ci/run installs)",
    ),
]

N_ROWS = 10_000
PROBABILITIES = ["approval_probability", "rejection_probability", "risk_score", "confidence"]
EXACT = ["prediction", "credit_score", "model_run_id"]


def run_job(
    store: TrackingStore,
    log: Path,
    *argv: str,
    master: str = "local[1]",
    cwd: Path | None = None,
    timeout: float = 600,
) -> tuple[int, str]:
    """Run one batch job on ``master`` to its end; its exit code and its console output."""
    job = ManagedProcess(
        "batch-score", list(argv), log,
        env=project_env(MLFLOW_TRACKING_URI=store.tracking_uri, SPARK_MASTER=master), cwd=cwd or store.root,
    ).start()  # fmt: skip
    try:
        assert job.process is not None
        code = job.process.wait(timeout=timeout)
    finally:
        job.stop()
    return code, log.read_text(errors="replace")


def champion(store: TrackingStore) -> PyFuncModel:
    client = MlflowClient(tracking_uri=store.tracking_uri)
    version = client.get_model_version_by_alias("credit-score", "champion").version
    model: PyFuncModel = mlflow.pyfunc.load_model(
        client.get_model_version_download_uri("credit-score", version)
    )
    return model


def in_process(store: TrackingStore, applicants: pd.DataFrame) -> pd.DataFrame:
    scored = champion(store).predict(applicants)
    assert isinstance(scored, pd.DataFrame)
    return scored


def assert_same_scores(spark: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Spark's rows against in-process predict's, in order: decisions exact, probabilities to 1e-12."""
    assert len(spark) == len(expected)
    for name in EXACT:
        assert spark[name].tolist() == expected[name].tolist(), name
    np.testing.assert_allclose(spark[PROBABILITIES], expected[PROBABILITIES], rtol=0, atol=1e-12)
    # NB: Spark hands a struct's fields back in its own order; the reasons must match as mappings.
    as_dicts = [[dict(reason) for reason in row] for row in spark["reasons"]]
    assert as_dicts == expected["reasons"].tolist()


def test_mlflow_run_batch_score_scores_a_csv_as_in_process_predict(
    sqlite_store: TrackingStore, tmp_path: Path
) -> None:
    applicants = generate_applicants(N_ROWS, seed=31).drop(columns=[TARGET])
    portfolio = applicants.copy()
    # An id with leading zeros: inferring the CSV's types would turn it into a number.
    portfolio.insert(0, "application_id", [f"{i:08d}" for i in range(N_ROWS)])
    portfolio.to_csv(tmp_path / "portfolio.csv", index=False)

    code, console = run_job(
        sqlite_store, tmp_path / "job.log",
        *commands.project_run(f"input={tmp_path / 'portfolio.csv'}", f"output={tmp_path / 'scores.parquet'}"),
        "-e", "batch_score",
    )  # fmt: skip

    assert code == 0, console[-5000:]
    assert f"wrote {N_ROWS:,} scored rows" in console
    scored = pd.read_parquet(tmp_path / "scores.parquet")
    assert list(scored.columns[: len(portfolio.columns)]) == list(portfolio.columns)
    assert scored["application_id"].tolist() == portfolio["application_id"].tolist()
    pd.testing.assert_frame_equal(scored[applicants.columns], applicants, check_dtype=False, check_exact=True)
    assert_same_scores(scored, in_process(sqlite_store, applicants))


def test_a_parquet_of_integers_decimals_and_extra_columns_scores_as_float64(
    sqlite_store: TrackingStore, tmp_path: Path
) -> None:
    """On two cores: the one-row-group file is spread over both, and the rows keep their order."""
    applicants = generate_applicants(2_000, seed=32).drop(columns=[TARGET])
    portfolio = applicants.astype({"age": "int32", "num_credit_lines": "int64"})
    portfolio["income"] = pd.Series([Decimal(f"{value:.2f}") for value in applicants["income"]], dtype=object)
    portfolio["branch"] = pd.Categorical(np.where(np.arange(2_000) % 2 == 0, "north", "south"))
    portfolio["applied_on"] = [datetime.date(2026, 11, 1 + i % 28) for i in range(2_000)]
    portfolio.to_parquet(tmp_path / "portfolio.parquet", index=False)

    code, console = run_job(
        sqlite_store, tmp_path / "job.log", commands.venv_bin("python"), "-m", "training.batch_score",
        "--input", str(tmp_path / "portfolio.parquet"), "--output", str(tmp_path / "scores"),
        master="local[2]",
    )  # fmt: skip

    assert code == 0, console[-5000:]
    assert len(list((tmp_path / "scores").glob("part-*.parquet"))) == 2
    scored = pd.read_parquet(tmp_path / "scores")
    written = pd.read_parquet(tmp_path / "portfolio.parquet")
    pd.testing.assert_frame_equal(
        scored[written.columns], written, check_categorical=False, check_dtype=False, check_exact=True
    )
    assert_same_scores(scored, in_process(sqlite_store, applicants.astype({"age": "float64"})))


def test_an_invalid_applicant_fails_the_job_naming_the_rule_and_writes_nothing(
    sqlite_store: TrackingStore, tmp_path: Path
) -> None:
    portfolio = generate_applicants(50, seed=33).drop(columns=[TARGET])
    portfolio["age"] = portfolio["age"].astype("float64")
    portfolio.loc[7, "age"] = 35.5
    portfolio.loc[7, "income"] = 43219.0
    portfolio.to_csv(tmp_path / "portfolio.csv", index=False)

    code, console = run_job(
        sqlite_store, tmp_path / "job.log", commands.venv_bin("python"), "-m", "training.batch_score",
        "--input", str(tmp_path / "portfolio.csv"), "--output", str(tmp_path / "scores"),
    )  # fmt: skip

    assert code == 1
    assert "age must be an integer between 18 and 100" in console
    assert "nothing was written" in console
    assert "43219" not in console
    assert not (tmp_path / "scores").exists()


def test_make_bench_spark_measures_both_ways(sqlite_store: TrackingStore, tmp_path: Path) -> None:
    """`make bench-spark` with tiny counts: it scores the portfolio both ways and reports rows/s."""
    code, console = run_job(
        sqlite_store, tmp_path / "bench.log", commands.venv_bin("python"), "-m", "scripts.bench_spark",
        "--rows", "3000", "--chunk-rows", "1000", "--tracking-uri", sqlite_store.tracking_uri,
        "--master", "local[1]", "--json", str(tmp_path / "bench.json"), cwd=PROJECT_ROOT,
    )  # fmt: skip

    assert code == 0, console[-5000:]
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["rows"] == 3000
    assert figures["spark_rows_per_second"] > 0
    assert figures["in_process_rows_per_second"] > 0
    assert "/ in-process" in console
