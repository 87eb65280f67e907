"""``make bench``: the facade against the raw MLflow scoring server, measured side by side in one run.

Trains one model (or reuses a tracking server's), then serves it three ways on free 127.0.0.1
ports: the raw scoring server running the plain scikit-learn pyfunc path (the baseline), the raw
scoring server running the fast exact path, and the facade in front of the latter. It measures
single-request latency and throughput (sequential and concurrent), batch rows/s, in-process
predict latency by batch size, and the facade's memory, then prints ratios against the baseline.
A benchmark reports numbers; it never passes or fails on them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from model_code.schema import EXAMPLE_APPLICANTS
from model_code.tracking import CHAMPION
from scripts import commands
from scripts.processes import ManagedProcess, free_port


@dataclass
class Latency:
    """Latencies of one scenario, in milliseconds, and its throughput."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0

    @classmethod
    def of(cls, latencies: list[float], errors: int, seconds: float) -> Latency:
        ordered = sorted(latencies) or [float("nan")]
        return cls(
            requests=len(latencies),
            errors=errors,
            seconds=seconds,
            p50_ms=1000 * ordered[len(ordered) // 2],
            p99_ms=1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        )


@dataclass
class Target:
    """One way of asking for a prediction: a URL and how to wrap applications for it."""

    name: str
    url: str
    batch_url: str
    wrap_one: Callable[[dict[str, Any]], dict[str, Any]]
    wrap_many: Callable[[list[dict[str, Any]]], dict[str, Any]]


def raw_target(name: str, base: str) -> Target:
    return Target(
        name,
        f"{base}/invocations",
        f"{base}/invocations",
        lambda row: {"dataframe_records": [row]},
        lambda rows: {"dataframe_records": rows},
    )


def facade_target(base: str, name: str = "facade") -> Target:
    return Target(
        name,
        f"{base}/api/v1/predict",
        f"{base}/api/v1/predict/batch",
        lambda row: row,
        lambda rows: {"applications": rows},
    )


def sequential(target: Target, n_requests: int) -> Latency:
    """One client, one request at a time, keep-alive."""
    body = target.wrap_one(EXAMPLE_APPLICANTS["approved"])
    latencies, errors = [], 0
    with httpx.Client(timeout=30) as client:
        client.post(target.url, json=body)  # warm the connection
        started = time.perf_counter()
        for _ in range(n_requests):
            t0 = time.perf_counter()
            ok = client.post(target.url, json=body).status_code == 200
            latencies.append(time.perf_counter() - t0)
            errors += not ok
    return Latency.of(latencies, errors, time.perf_counter() - started)


async def _concurrent(target: Target, clients: int, seconds: float) -> Latency:
    body = target.wrap_one(EXAMPLE_APPLICANTS["rejected"])
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    ok = (await client.post(target.url, json=body)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return Latency.of(latencies, errors, time.perf_counter() - started)


# NB: wrk (C, one thread) drives the concurrent scenarios when it is installed: a Python client
# on the same two cores costs ~2 ms of CPU a request and caps any server near 150 requests/s.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")
done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %d %d %d %f %f\\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.duration, 0, latency:percentile(50), latency:percentile(99)))
end
"""


def concurrent(target: Target, clients: int, seconds: float, use_wrk: bool) -> Latency:
    """``clients`` concurrent keep-alive clients for ``seconds`` (wrk when available)."""
    if not use_wrk:
        return asyncio.run(_concurrent(target, clients, seconds))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    body = json.dumps(target.wrap_one(EXAMPLE_APPLICANTS["rejected"]))
    # NB: --timeout 30s: with wrk's default of 2 s a slow server's late answers count as errors.
    duration = f"{max(seconds, 1):.0f}s"
    argv = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(clients),
        "-d",
        duration,
        "--timeout",
        "30s",
        "-s",
        script.name,
        target.url,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "BENCH_BODY": body})
    Path(script.name).unlink()
    line = next(x for x in result.stdout.splitlines() if x.startswith("BENCH "))
    requests, errors, bad_status, micros, _, p50, p99 = (float(v) for v in line.split()[1:])
    return Latency(
        requests=int(requests),
        errors=int(errors + bad_status),
        seconds=micros / 1e6,
        p50_ms=p50 / 1000,
        p99_ms=p99 / 1000,
    )


def batch_rows_per_second(target: Target, rows: list[dict[str, Any]], repeats: int) -> float:
    body = target.wrap_many(rows)
    times = []
    with httpx.Client(timeout=120) as client:
        for _ in range(repeats):
            t0 = time.perf_counter()
            response = client.post(target.batch_url, json=body)
            times.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise RuntimeError(f"{target.name} batch of {len(rows)} answered {response.status_code}")
    return len(rows) / statistics.median(times)


def in_process(
    model_uri: str, tracking_uri: str, sizes: list[int], repeats: int
) -> dict[str, dict[str, float]]:
    """Median ms per call: scikit-learn pipeline, the fast path, and MLflow's pyfunc.predict."""
    import mlflow

    from model_code.pyfunc import model_input
    from model_code.validation import validate
    from training.data import TARGET, generate_applicants

    mlflow.set_tracking_uri(tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    model = pyfunc.unwrap_python_model()
    frame = model_input(generate_applicants(max(sizes), seed=77).drop(columns=[TARGET]))
    results: dict[str, dict[str, float]] = {}
    for size in sizes:
        part = frame.head(size)
        applicants = validate(part)
        candidates: dict[str, Callable[[], object]] = {
            "sklearn_pipeline": partial(model.pipeline.predict_proba, applicants.to_frame()),
            "fast_path": partial(model.fast.explain, applicants),
            "model_predict": partial(model.predict, None, part),
            "pyfunc_predict": partial(pyfunc.predict, part),
        }
        results[str(size)] = {
            name: _median_ms(fn, repeats if size < 1000 else 5) for name, fn in candidates.items()
        }
    return results


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Report:
    settings: dict[str, Any]
    sequential: dict[str, dict[str, float]] = field(default_factory=dict)
    concurrent: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    batch_rows_per_second: dict[str, dict[str, float]] = field(default_factory=dict)
    in_process_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    facade_rss_mb: float = 0.0
    # The per-client rate limiter's cost: the facade without limits and with a generous RATE_LIMIT.
    rate_limiter: dict[str, dict[str, float]] = field(default_factory=dict)

    def table(self) -> str:
        header = f"{'scenario':<30}{'raw-sklearn':>12}{'raw-fast':>13}{'facade':>13}"
        lines = ["", header + f"{'facade/raw-sklearn':>20}{'facade/raw-fast':>17}"]

        def row(label: str, values: dict[str, float]) -> None:
            base, fast, front = values["raw-sklearn"], values["raw-fast"], values["facade"]
            cells = f"{base:>12.1f}{fast:>13.1f}{front:>13.1f}"
            lines.append(f"{label:<30}{cells}{front / base:>20.2f}{front / fast:>17.2f}")

        row("sequential p50 (ms)", {k: v["p50_ms"] for k, v in self.sequential.items()})
        row("sequential p99 (ms)", {k: v["p99_ms"] for k, v in self.sequential.items()})
        row("sequential req/s", {k: v["per_second"] for k, v in self.sequential.items()})
        for clients, by_target in self.concurrent.items():
            row(f"{clients} clients req/s", {k: v["per_second"] for k, v in by_target.items()})
            row(f"{clients} clients p99 (ms)", {k: v["p99_ms"] for k, v in by_target.items()})
        for rows, rates in self.batch_rows_per_second.items():
            row(f"batch {rows} rows/s", rates)
        lines.append("")
        lines.append(
            "in-process ms per call   "
            + "".join(f"{name:>18}" for name in next(iter(self.in_process_ms.values())))
        )
        for size, by_path in self.in_process_ms.items():
            lines.append(
                f"  {size:>6} rows              " + "".join(f"{ms:>18.3f}" for ms in by_path.values())
            )
        one = self.in_process_ms.get("1")
        if one:
            sklearn = one["sklearn_pipeline"]
            lines.append(
                f"  one row: scikit-learn pipeline / fast path = {sklearn / one['fast_path']:.1f}x, "
                f"/ model predict = {sklearn / one['model_predict']:.1f}x, "
                f"/ pyfunc.predict = {sklearn / one['pyfunc_predict']:.1f}x"
            )
        lines.append(f"facade RSS: {self.facade_rss_mb:.1f} MB")
        if self.rate_limiter:
            off, on = self.rate_limiter["facade"], self.rate_limiter[RATE_LIMITED]
            clients = self.settings["rate_limit_clients"]
            lines.append(
                f"rate limiter, {clients} clients: none {off['per_second']:.0f} req/s "
                f"(p99 {off['p99_ms']:.1f} ms), RATE_LIMIT={GENEROUS_LIMIT} {on['per_second']:.0f} req/s "
                f"(p99 {on['p99_ms']:.1f} ms), limited/none = {on['per_second'] / off['per_second']:.2f}"
            )
        lines.append(f"concurrent scenarios driven by: {self.settings.get('load_generator', 'python httpx')}")
        return "\n".join(lines)


# NB: a limit no benchmark reaches: what is measured is the cost of counting, not of refusing.
GENEROUS_LIMIT = "1000000/second"
RATE_LIMITED = "facade-rate-limited"


def _latency_dict(latency: Latency) -> dict[str, float]:
    return {**asdict(latency), "per_second": latency.per_second}


def run(args: argparse.Namespace) -> Report:
    from training.data import TARGET, generate_applicants

    root = Path(tempfile.mkdtemp(prefix="credit-score-bench-"))
    processes: list[ManagedProcess] = []

    def start(name: str, argv: list[str], url: str, timeout: float = 180, **env: str) -> ManagedProcess:
        process = ManagedProcess(name, argv, root / f"{name}.log", env=commands.child_env(**env), cwd=root)
        processes.append(process.start())
        process.wait_http(url, timeout=timeout)
        return process

    report = Report(settings={k: v for k, v in vars(args).items() if k != "json"})
    try:
        tracking_uri = args.tracking_uri
        if tracking_uri is None:
            port = free_port()
            tracking_uri = f"http://127.0.0.1:{port}"
            start(
                "mlflow-server",
                commands.tracking_server(
                    f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", "127.0.0.1", port
                ),
                f"{tracking_uri}/health",
            )
            subprocess.run(
                commands.project_run(*(f"{k}={v}" for k, v in args.train.items())),
                cwd=root,
                env=commands.child_env(MLFLOW_TRACKING_URI=tracking_uri),
                check=True,
                capture_output=True,
            )
        model_uri = f"models:/{args.model_name}@{CHAMPION}"
        servers = {}
        for name, inference in (("raw-sklearn", "sklearn"), ("raw-fast", "fast")):
            port = free_port()
            servers[name] = f"http://127.0.0.1:{port}"
            start(
                name,
                commands.model_server(model_uri, "127.0.0.1", port),
                f"{servers[name]}/ping",
                MLFLOW_TRACKING_URI=tracking_uri,
                CREDIT_SCORE_INFERENCE=inference,
            )
        facade_env = {
            "SCORING_URL": servers["raw-fast"],
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MODEL_NAME": args.model_name,
            "MAX_BATCH_SIZE": str(max(args.batch_rows)),
            "MAX_BODY_BYTES": str(64 * 1024 * 1024),
            "MAX_IN_FLIGHT": str(4 * max(*args.concurrency, args.rate_limit_clients) + 64),
        }
        api_port = free_port()
        api = f"http://127.0.0.1:{api_port}"
        facade = start(
            "facade",
            commands.facade(),
            f"{api}/api/v1/health/ready",
            timeout=60,
            HOST="127.0.0.1",
            PORT=str(api_port),
            **facade_env,
        )
        targets = [
            raw_target("raw-sklearn", servers["raw-sklearn"]),
            raw_target("raw-fast", servers["raw-fast"]),
            facade_target(api),
        ]

        for target in targets:
            report.sequential[target.name] = _latency_dict(sequential(target, args.requests))
        use_wrk = shutil.which("wrk") is not None and not args.python_client
        report.settings["load_generator"] = "wrk" if use_wrk else "python httpx"
        for clients in args.concurrency:
            report.concurrent[str(clients)] = {
                t.name: _latency_dict(concurrent(t, clients, args.duration, use_wrk)) for t in targets
            }
        sample = json.loads(
            generate_applicants(max(args.batch_rows), seed=5).drop(columns=[TARGET]).to_json(orient="records")
        )
        for rows in args.batch_rows:
            report.batch_rows_per_second[str(rows)] = {
                t.name: batch_rows_per_second(t, sample[:rows], args.batch_repeats) for t in targets
            }
        report.facade_rss_mb = rss_mb(facade.pid)
        report.rate_limiter = _rate_limiter_cost(args, start, facade_env, api, use_wrk)
        report.in_process_ms = in_process(
            model_uri, tracking_uri, args.in_process_sizes, args.in_process_repeats
        )
    finally:
        for process in reversed(processes):
            process.stop()
    return report


def _rate_limiter_cost(
    args: argparse.Namespace,
    start: Callable[..., ManagedProcess],
    facade_env: dict[str, str],
    api: str,
    use_wrk: bool,
) -> dict[str, dict[str, float]]:
    """The same concurrent scenario against the facade and against a twin with a generous RATE_LIMIT.

    NB: two rounds, interleaved, each target's rates averaged: on two shared cores a single
    back-to-back pair mostly measures which one ran second.
    """
    port = free_port()
    limited_url = f"http://127.0.0.1:{port}"
    start(
        RATE_LIMITED,
        commands.facade(),
        f"{limited_url}/api/v1/health/ready",
        timeout=60,
        HOST="127.0.0.1",
        PORT=str(port),
        RATE_LIMIT=GENEROUS_LIMIT,
        **facade_env,
    )
    targets = [facade_target(api), facade_target(limited_url, RATE_LIMITED)]
    rounds: dict[str, list[Latency]] = {target.name: [] for target in targets}
    for _ in range(2):
        for target in targets:
            rounds[target.name].append(concurrent(target, args.rate_limit_clients, args.duration, use_wrk))
    return {
        name: {
            "requests": sum(r.requests for r in runs),
            "errors": sum(r.errors for r in runs),
            "per_second": statistics.mean(r.per_second for r in runs),
            "p50_ms": statistics.mean(r.p50_ms for r in runs),
            "p99_ms": statistics.mean(r.p99_ms for r in runs),
        }
        for name, runs in rounds.items()
    }


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per target")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per concurrent scenario")
    parser.add_argument("--concurrency", type=_ints, default=[8, 32, 64])
    parser.add_argument("--batch-rows", type=_ints, default=[1000, 10000])
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--in-process-sizes", type=_ints, default=[1, 10, 100, 1000, 10000])
    parser.add_argument("--in-process-repeats", type=int, default=200)
    parser.add_argument(
        "--tracking-uri", default=None, help="reuse this tracking server's champion instead of training"
    )
    parser.add_argument("--model-name", default="credit-score")
    parser.add_argument("--n-samples", type=int, default=20000)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=12)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--python-client", action="store_true", help="drive concurrency with httpx even when wrk exists"
    )
    parser.add_argument(
        "--rate-limit-clients", type=int, default=32, help="clients of the rate limiter's cost scenario"
    )
    args = parser.parse_args(argv)
    args.train = {
        "n_samples": args.n_samples,
        "n_estimators": args.n_estimators,
        "max_depth": args.max_depth,
        "model_name": args.model_name,
    }
    return args


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv)
    report = run(args)
    print(report.table(), flush=True)  # noqa: T201 - a console report
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(report), indent=2))
    return report


if __name__ == "__main__":
    main()
