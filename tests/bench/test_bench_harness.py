"""The benchmark's own logic, without its servers: pooling rounds into figures and ratios, the
bit-identity check, the peers' request shapes and cached environments, and the CPU of process trees."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import respx

from model_code.schema import EXAMPLE_APPLICANTS, FEATURES
from scripts import bench, bench_procs
from scripts.bench_peers import envs, servers
from scripts.processes import ManagedProcess


def _sample(p50: float, ok: int, seconds: float, cpu: dict[str, float], rows: int = 1) -> dict[str, Any]:
    return {
        "requests": ok, "errors": 0, "seconds": seconds, "p50_ms": p50, "p99_ms": 2 * p50,
        "client_cpu_s": 0.1, "rows": rows, "wall_s": seconds, "cpu_s": cpu, "machine_busy_s": 1.5 * seconds,
    }  # fmt: skip


def test_rounds_pool_into_rates_medians_cores_and_ratios_against_the_best_peer() -> None:
    args = bench.parse_args(["--concurrency", "8", "--batch-rows", "100"])
    cols = bench.columns(args)
    # facade, raw-sklearn and two peers over two rounds; the facade's second round is slower.
    rounds = []
    for facade_ms, facade_ok in ((4.0, 400), (6.0, 200)):
        rounds.append(
            {
                "sequential": {
                    "facade": _sample(facade_ms, 100, 1.0, {"facade": 0.4, "scoring server": 0.3}),
                    "raw-sklearn": _sample(20.0, 50, 1.0, {"scoring server": 0.9}),
                    "bentoml": _sample(12.0, 80, 1.0, {"server": 0.9}),
                    "mlserver": _sample(9.0, 90, 1.0, {"server": 0.9}),
                },
                "8 connections": {
                    "facade": _sample(10.0, facade_ok, 1.0, {"facade": 0.6, "scoring server": 0.4}),
                    "raw-sklearn": _sample(200.0, 40, 1.0, {"scoring server": 1.0}),
                    "bentoml": _sample(20.0, 300, 1.0, {"server": 1.0}),
                    "mlserver": _sample(70.0, 100, 1.0, {"server": 1.0}),
                },
                "batch 100": {
                    "facade": _sample(50.0, 2, 0.1, {"facade": 0.05, "scoring server": 0.05}, rows=100),
                    "raw-sklearn": _sample(20.0, 2, 0.04, {"scoring server": 0.04}, rows=100),
                    "bentoml": _sample(20.0, 2, 0.04, {"server": 0.04}, rows=100),
                    "mlserver": _sample(10.0, 2, 0.02, {"server": 0.02}, rows=100),
                },
            }
        )
    report = bench.Report(settings={}, rounds=rounds)

    bench.summarise(report, cols)

    concurrent = report.summary["8 connections"]["facade"]
    assert concurrent["per_second"] == pytest.approx(300.0)  # 600 answers in 2 s, not a mean of rates
    assert report.summary["sequential"]["facade"]["p50_ms"] == pytest.approx(5.0)  # the rounds' median
    assert concurrent["cores"] == pytest.approx({"facade": 0.6, "scoring server": 0.4})
    assert report.summary["batch 100"]["mlserver"]["rows_per_second"] == pytest.approx(10_000)
    # Lower is better for latency, higher for throughput: the best peer differs by column.
    assert report.ratios["sequential p50 (ms)"]["best peer name"] == "mlserver"
    assert report.ratios["sequential p50 (ms)"]["best peer"] == pytest.approx(5.0 / 9.0)
    assert report.ratios["8 connections (req/s)"]["best peer name"] == "bentoml"
    assert report.ratios["8 connections (req/s)"]["best peer"] == pytest.approx(1.0)
    assert report.ratios["8 connections (req/s)"]["raw-sklearn"] == pytest.approx(300.0 / 40.0)
    assert report.ratios["100-row batch (rows/s)"]["best peer"] == pytest.approx(2_000 / 10_000)
    # What the machine did besides our processes and the load generator.
    assert report.machine["sequential"]["others_cores"] == pytest.approx(1.5 - (0.7 + 0.9 * 3 + 0.4) / 4)


class _Pyfunc:
    """The pyfunc's predict, answering one probability of default for every row."""

    def __init__(self, risk: float) -> None:
        self.risk = risk

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"rejection_probability": [self.risk] * len(frame)})


@respx.mock
def test_a_server_one_float_step_away_from_the_pyfunc_is_refused_before_it_is_measured() -> None:
    risk = 0.25

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[risk] * len(json.loads(request.content)["applications"]))

    respx.post("http://peer.test/predict").mock(side_effect=answer)
    server = bench.Server("bentoml", "BentoML", "http://peer.test", servers.BENTOML, {})
    rows = [dict(row) for row in EXAMPLE_APPLICANTS.values()] * 3

    bench.check_identical(server, _Pyfunc(risk), rows)
    with pytest.raises(bench.ProbabilityMismatch, match=r"bentoml: 0\.25 for the approved applicant"):
        bench.check_identical(server, _Pyfunc(math.nextafter(risk, 1.0)), rows)


def test_mlserver_requests_carry_one_typed_column_per_applicant_field() -> None:
    approved, rejected = EXAMPLE_APPLICANTS["approved"], EXAMPLE_APPLICANTS["rejected"]

    body = servers.MLSERVER.wrap_many([dict(approved), dict(rejected)])

    assert isinstance(body, dict)
    assert body["parameters"] == {"content_type": "pd"}
    inputs = {spec["name"]: spec for spec in body["inputs"]}
    assert list(inputs) == [f.name for f in FEATURES]
    assert inputs["age"] == {"name": "age", "shape": [2], "data": [35, 22], "datatype": "INT64"}
    assert inputs["income"]["datatype"] == "FP64"
    assert inputs["loan_intent"]["datatype"] == "BYTES"
    assert inputs["loan_intent"]["parameters"] == {"content_type": "str"}
    answer = {"outputs": [{"name": "rejection_probability", "data": [0.1, 0.9]}]}
    assert servers.MLSERVER.risk_many(answer) == [0.1, 0.9]


def test_peer_venvs_carry_the_model_pins_and_are_keyed_by_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reqs = envs.requirements("mlserver")
    assert any(r.startswith("mlserver==1.7.") for r in reqs)
    assert {r.split("==")[0] for r in envs.model_runtime_pins()} == set(envs.MODEL_RUNTIME)
    assert envs.env_path("mlserver", tmp_path) == envs.env_path("mlserver", tmp_path)
    before = envs.env_path("mlserver", tmp_path)

    monkeypatch.setattr(envs, "peer_pins", lambda kind: ["mlserver==1.7.0"])

    assert envs.env_path("mlserver", tmp_path) != before


def test_a_complete_peer_venv_is_reused_and_a_half_built_one_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def pip_fails(argv: list[str], **_: object) -> subprocess.CompletedProcess[bytes]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 1 if "pip" in argv else 0)

    monkeypatch.setattr(subprocess, "run", pip_fails)
    path = envs.env_path("bentoml", tmp_path)
    (path / "bin").mkdir(parents=True)
    (path / envs.COMPLETE).write_text("")

    assert envs.ensure("bentoml", tmp_path, tmp_path / "pip.log").path == path
    assert calls == []  # nothing installed: the cached venv is used as it is

    (path / envs.COMPLETE).unlink()  # an earlier build stopped halfway
    with pytest.raises(envs.PeerUnavailable, match=r"pip\.log"):
        envs.ensure("bentoml", tmp_path, tmp_path / "pip.log")
    assert [argv[1:3] for argv in calls] == [["-m", "venv"], ["-m", "pip"]]


GRANDCHILD = """
import subprocess, sys, time
burn = "import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.4: pass\\ntime.sleep(60)"
child = subprocess.Popen([sys.executable, "-c", burn], start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_servers_cpu_and_stop_include_the_workers_that_left_its_process_group(tmp_path: Path) -> None:
    # Like BentoML's supervisor: its worker runs in a session of its own.
    process = ManagedProcess("tree", [sys.executable, "-c", GRANDCHILD], tmp_path / "tree.log").start()
    try:
        process.wait_until(lambda: (tmp_path / "tree.log").read_text().strip().isdigit(), 10, "a pid")
        worker = int((tmp_path / "tree.log").read_text())
        deadline = time.monotonic() + 10
        while (
            bench_procs.cpu_seconds(process.pid, bench_procs.snapshot()) < 0.35
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)

        assert bench_procs.cpu_seconds(process.pid, bench_procs.snapshot()) >= 0.35
        assert os.getpgid(worker) != process.pid
    finally:
        bench_procs.stop_tree(process, grace=5)

    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}  # NB: a zombie waits for init to reap it; it runs no more
