"""``make loadtest``: a closed-loop HTTP load generator that reports latency percentiles and throughput.

``CONCURRENCY`` clients each send one request after another to ``URL`` for ``DURATION`` seconds
(asyncio + httpx, one pooled connection per client). At the end it prints requests/s, the error
rate (any answer other than 2xx, or no answer), the status mix and p50/p95/p99 latency. It is a
tool, not a test: it never fails on the numbers. By default it posts the README's approved
applicant to the facade's ``/api/v1/predict``.

    python -m scripts.loadtest --url http://127.0.0.1:8000/api/v1/predict --concurrency 16 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from model_code.schema import EXAMPLE_APPLICANTS

DEFAULT_URL = "http://127.0.0.1:8000/api/v1/predict"


@dataclass
class Results:
    """Latencies of completed requests and the status of every request (0: no answer)."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


async def run(
    url: str,
    concurrency: int,
    duration: float,
    *,
    method: str = "POST",
    body: object = None,
    headers: dict[str, str] | None = None,
    request_timeout: float = 10.0,
) -> tuple[Results, float]:
    """Load ``url`` for ``duration`` seconds from ``concurrency`` clients; return results and seconds."""
    results = Results()
    content = json.dumps(body).encode() if body is not None else None
    request_headers = (
        {"Content-Type": "application/json", **(headers or {})} if content else dict(headers or {})
    )
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=request_timeout, limits=limits, trust_env=False) as client:
        deadline = time.monotonic() + duration

        async def client_loop() -> None:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    response = await client.request(method, url, content=content, headers=request_headers)
                except httpx.HTTPError:
                    results.statuses[0] += 1
                    continue
                results.latencies.append(time.perf_counter() - start)
                results.statuses[response.status_code] += 1

        started = time.monotonic()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        return results, time.monotonic() - started


def percentile(latencies: list[float], pct: int) -> float:
    if len(latencies) < 2:
        return latencies[0] if latencies else float("nan")
    return statistics.quantiles(latencies, n=100, method="inclusive")[pct - 1]


def report(url: str, concurrency: int, results: Results, elapsed: float) -> str:
    """The summary printed at the end of a run."""
    ms = [latency * 1000 for latency in results.latencies]
    mix = ", ".join(f"{status or 'no answer'}: {n}" for status, n in sorted(results.statuses.items()))
    error_rate = results.errors / results.count if results.count else 0.0
    return "\n".join(
        [
            f"url {url}, concurrency {concurrency}, {elapsed:.1f} s",
            f"requests {results.count}, {results.count / elapsed:.1f} requests/s, "
            f"error rate {error_rate:.1%} ({results.errors} not 2xx or unanswered)",
            f"status {mix or 'none'}",
            f"latency ms p50 {percentile(ms, 50):.1f}, p95 {percentile(ms, 95):.1f}, "
            f"p99 {percentile(ms, 99):.1f}, max {max(ms, default=float('nan')):.1f}",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", default=DEFAULT_URL, help=f"target (default {DEFAULT_URL})")
    parser.add_argument("--concurrency", type=int, default=8, help="clients sending at once (default 8)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    parser.add_argument("--method", default="POST", help="HTTP method (default POST)")
    parser.add_argument(
        "--body", type=Path, help="JSON file to send (default: the README's approved applicant; none for GET)"
    )
    parser.add_argument("--api-key", help="sent as X-API-Key when the facade has API keys configured")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="per-request timeout in seconds (default 10)"
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0:
        parser.error("--concurrency must be at least 1 and --duration positive")

    method = args.method.upper()
    if args.body is not None:
        body: object = json.loads(args.body.read_text())
    else:
        body = EXAMPLE_APPLICANTS["approved"] if method in ("POST", "PUT", "PATCH") else None
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    results, elapsed = asyncio.run(
        run(
            args.url,
            args.concurrency,
            args.duration,
            method=method,
            body=body,
            headers=headers,
            request_timeout=args.timeout,
        )
    )
    print(report(args.url, args.concurrency, results, elapsed))  # noqa: T201 - this is a console program


if __name__ == "__main__":
    main()
