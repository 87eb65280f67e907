"""`make loadtest`'s tool runs for about a second against a tiny local server and prints its figures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from scripts.processes import PROJECT_ROOT
from tests.integration.stub_upstream import StubUpstream


@pytest.fixture
def stub() -> Iterator[StubUpstream]:
    server = StubUpstream().start()
    try:
        yield server
    finally:
        server.stop()


def loadtest(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "scripts.loadtest", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_prints_percentiles_throughput_and_error_rate(stub: StubUpstream) -> None:
    out = loadtest("--url", f"{stub.url}/ping", "--method", "GET", "--concurrency", "4", "--duration", "1")

    assert f"url {stub.url}/ping, concurrency 4" in out
    assert "requests/s, error rate 0.0%" in out
    assert "latency ms p50 " in out
    assert ", p95 " in out
    assert ", p99 " in out
    assert "status 200: " in out


def test_counts_non_2xx_answers_as_errors(stub: StubUpstream) -> None:
    out = loadtest("--url", f"{stub.url}/missing", "--concurrency", "2", "--duration", "0.5")

    assert "error rate 100.0%" in out
    assert "status 404: " in out
