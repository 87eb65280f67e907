"""`make bench` with tiny counts: the harness starts its servers, measures every scenario, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import bench

pytestmark = pytest.mark.integration


def test_bench_reports_every_scenario_with_ratios(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"

    report = bench.main(
        [
            "--requests", "5", "--duration", "0.5", "--concurrency", "2", "--batch-rows", "50",
            "--batch-repeats", "1", "--in-process-sizes", "1,10", "--in-process-repeats", "3",
            "--n-samples", "2000", "--n-estimators", "10", "--rate-limit-clients", "2", "--json", str(out),
        ]
    )  # fmt: skip

    saved = json.loads(out.read_text())
    targets = {"raw-sklearn", "raw-fast", "facade"}
    assert set(saved["sequential"]) == targets
    assert set(saved["concurrent"]["2"]) == targets
    assert set(saved["batch_rows_per_second"]["50"]) == targets
    assert all(v["errors"] == 0 and v["requests"] >= 5 for v in saved["sequential"].values())
    assert set(saved["in_process_ms"]["1"]) == {
        "sklearn_pipeline",
        "fast_path",
        "model_predict",
        "pyfunc_predict",
    }
    assert 0 < saved["facade_rss_mb"] < 1000
    # NB: the limit is generous: the limited twin refuses nothing, so its rate is the limiter's cost.
    assert set(saved["rate_limiter"]) == {"facade", "facade-rate-limited"}
    assert all(v["errors"] == 0 and v["requests"] > 0 for v in saved["rate_limiter"].values())
    assert "facade/raw-sklearn" in report.table()
    assert "rate limiter, 2 clients" in report.table()
