"""The benchmark's load generators: wrk for single applications, a lean keep-alive client for batches.

wrk (C, one thread) drives the sequential (one connection) and concurrent scenarios: a Python
client on the same two cores costs about 2 ms of CPU a request and would cap any server near 150
requests/s. Batches are timed request by request by a Python client that sends a body encoded
once and reads the answer's bytes without parsing them: wrk's fixed duration would cut off the
batch in flight (up to two seconds of work for 10,000 rows through the facade), and a batch costs
the client well under 1 % of the server's time. Without wrk, httpx drives every scenario.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import resource
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx


@dataclass
class Sample:
    """One scenario against one server in one round: counts, time, latencies in milliseconds.

    ``requests`` counts the answers received, ``errors`` those that were not 200, and
    ``socket_errors`` the requests that got no answer (refused, reset or timed out).
    """

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    client_cpu_s: float = 0.0
    socket_errors: int = 0

    @property
    def ok(self) -> int:
        return self.requests - self.errors

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _quantiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies) or [float("nan")]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return 1000 * ordered[len(ordered) // 2], 1000 * p99


# NB: the body comes from a file: a 1,000-row body is larger than one environment variable may be.
WRK_SCRIPT = """
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %d %d %f %f\\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk(url: str, body: bytes, connections: int, seconds: float) -> Sample:
    """``connections`` keep-alive connections posting ``body`` for ``seconds`` (one wrk thread)."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script, body_file = Path(tmp) / "post.lua", Path(tmp) / "body.json"
        script.write_text(WRK_SCRIPT)
        body_file.write_bytes(body)
        # NB: --timeout 30s: with wrk's default of 2 s a slow server's late answers count as errors.
        argv = [
            "wrk", "-t", "1", "-c", str(connections), "-d", f"{max(seconds, 1):.0f}s",
            "--timeout", "30s", "-s", str(script), url,
        ]  # fmt: skip
        before = _children_cpu()
        result = subprocess.run(
            argv, capture_output=True, text=True, env={**os.environ, "BENCH_BODY_FILE": str(body_file)}
        )
        client_cpu = _children_cpu() - before
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{result.stdout}\n{result.stderr}")
    requests, socket_errors, bad_status, micros, p50, p99 = (float(v) for v in line.split()[1:])
    return Sample(
        int(requests), int(bad_status), micros / 1e6, p50 / 1000, p99 / 1000, client_cpu, int(socket_errors)
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def python_load(url: str, body: bytes, connections: int, seconds: float) -> Sample:
    """The same scenario driven by httpx (when wrk is not installed)."""
    before = _self_cpu()
    sample = asyncio.run(_python_load(url, body, connections, seconds))
    sample.client_cpu_s = _self_cpu() - before
    return sample


async def _python_load(url: str, body: bytes, connections: int, seconds: float) -> Sample:
    latencies: list[float] = []
    errors = socket_errors = 0
    headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors, socket_errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    status = (await client.post(url, content=body, headers=headers)).status_code
                except httpx.HTTPError:
                    socket_errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                errors += status != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return Sample(len(latencies), errors, elapsed, *_quantiles(latencies), socket_errors=socket_errors)


def batches(url: str, body: bytes, repeats: int, timeout: float = 300) -> Sample:
    """``repeats`` batch requests one after the other on one keep-alive connection, each timed."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    latencies, errors = [], 0
    before = _self_cpu()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            connection.request("POST", parts.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - t0)
            errors += response.status != 200
    finally:
        connection.close()
    return Sample(len(latencies), errors, sum(latencies), *_quantiles(latencies), _self_cpu() - before)


def post_json(url: str, payload: object, timeout: float = 120) -> object:
    """One request, answered JSON (the correctness checks before measuring)."""
    response = httpx.post(
        url, content=json.dumps(payload), headers={"Content-Type": "application/json"}, timeout=timeout
    )
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")
    return response.json()
