"""`make bench-rollout` with tiny counts: the harness trains, serves, measures both scenarios, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import bench_rollout

pytestmark = pytest.mark.integration


def test_bench_rollout_reports_throughput_ratios_and_both_rollouts(tmp_path: Path) -> None:
    out = tmp_path / "rollout.json"

    report = bench_rollout.main(
        [
            "--duration", "1", "--rounds", "1", "--poll-seconds", "1",
            "--n-samples", "2000", "--n-estimators", "10", "--json", str(out),
        ]
    )  # fmt: skip

    saved = json.loads(out.read_text())
    assert set(saved["throughput_c32"]) == {"raw champion server", "facade, shadow off", "facade, shadow 0.1"}
    assert all(len(runs) == 1 and runs[0] > 0 for runs in saved["throughput_c32"].values())
    assert [(r["from"], r["to"]) for r in saved["rollouts"]] == [("1", "2"), ("2", "1")]
    assert all(r["requests"] > 0 and r["failed"] == 0 and r["readiness"] == "200" for r in saved["rollouts"])
    assert "/ off" in report.table()
