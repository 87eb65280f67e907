"""`make bench` with tiny counts: the harness starts its servers, measures every scenario, reports.

The peers that need a virtual environment of their own (BentoML, MLServer) are left out: those
are built from PyPI on the first `make bench`. The one-hop limit server runs from the project's
venv, so the peer plumbing (launch, bit-identical check, interleaved rounds, cores) is tested on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import bench
from tests.integration.servers import sqlite_tracking

pytestmark = pytest.mark.integration

TINY = [
    "--rounds", "2", "--duration", "1", "--concurrency", "2", "--batch-rows", "50",
    "--batch-repeats", "1", "--in-process-sizes", "1,10", "--in-process-repeats", "3",
]  # fmt: skip


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tracking server with a small trained champion, shared by both runs of the bench."""
    with sqlite_tracking(tmp_path_factory.mktemp("bench-store")) as stack:
        stack.train("n_samples=2000", "n_estimators=10")
        yield stack.tracking_uri


def test_bench_reports_every_scenario_with_ratios(tracking_uri: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"

    report = bench.main([*TINY, "--peers", "none", "--tracking-uri", tracking_uri, "--json", str(out)])

    saved = json.loads(out.read_text())
    servers = {"raw-sklearn", "raw-fast", "facade", *bench.VARIANTS}
    assert set(saved["servers"]) == servers
    assert set(saved["summary"]) == {"sequential", "2 connections", "batch 50"}
    assert len(saved["rounds"]) == 2
    for scenario in saved["summary"].values():
        assert set(scenario) == servers
        assert all(v["errors"] == 0 and v["requests"] >= 1 for v in scenario.values())
    assert saved["summary"]["batch 50"]["facade"]["rows_per_second"] > 0
    # The facade's figure over the raw server's, for every column of the table.
    assert {c["title"] for c in saved["settings"]["columns"]} == set(saved["ratios"])
    assert all({"raw-sklearn", "raw-fast"} <= set(r) for r in saved["ratios"].values())
    facade_cores = saved["summary"]["sequential"]["facade"]["cores"]
    assert set(facade_cores) == {"facade", "scoring server"}
    assert all(0 < c < 2.5 for c in facade_cores.values())
    assert set(saved["in_process_ms"]["1"]) == {
        "sklearn_pipeline",
        "fast_path",
        "model_predict",
        "pyfunc_predict",
    }
    assert 0 < saved["rss_mb"]["facade"] < 1000
    assert "facade / raw-sklearn" in report.table()
    # Each twin's cost: its figure over the facade's, in every column (the generous rate limit
    # refuses nothing, so the twin answers every request).
    for variant in bench.VARIANTS:
        assert all(variant in r for r in saved["ratios"].values()), variant
        assert f"{variant} / facade" in report.table()


def test_bench_measures_the_one_hop_limit_beside_the_stack(tracking_uri: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"

    report = bench.main(
        [
            *TINY,
            "--peers",
            "one-hop",
            "--variants",
            "none",
            "--tracking-uri",
            tracking_uri,
            "--json",
            str(out),
        ]
    )

    saved = json.loads(out.read_text())
    # It started, answered the pyfunc's probabilities bit for bit (or the run would have failed),
    # and was measured in every scenario of both rounds beside the stack.
    assert set(saved["servers"]) == {"raw-sklearn", "raw-fast", "facade", "one-hop"}
    assert all("one-hop" in r[k] for r in saved["rounds"] for k in r)
    one_hop = saved["summary"]["sequential"]["one-hop"]
    assert one_hop["errors"] == 0
    assert one_hop["p50_ms"] > 0
    assert one_hop["cores"]["server"] > 0
    assert saved["summary"]["batch 50"]["one-hop"]["rows_per_second"] > 0
    assert all("one-hop" in r for r in saved["ratios"].values())
    assert "best peer" not in next(iter(saved["ratios"].values()))
    assert "facade / one-hop" in report.table()
