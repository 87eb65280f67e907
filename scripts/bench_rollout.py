"""``make bench-rollout``: what a champion rollout costs clients, and what the shadow costs throughput.

Trains two versions on a fresh tracking server, starts the serving supervisor (``@champion`` v1,
``@challenger`` v2) and two facades in front of it, one with ``SHADOW_SAMPLE_RATE`` 0.1 and one
without, all on free 127.0.0.1 ports. Then, in one run:

- throughput at 32 concurrent clients of the raw champion server, the facade with shadow off and
  the facade with shadow at 0.1, in rounds whose order alternates, so that a noisy machine's drift
  hits both facades alike;
- rollouts under load: eight clients keep predicting while ``@champion`` moves to v2 and back; the
  time from each alias move to the first answer from the new version, and the failed requests.

A benchmark reports numbers; it never passes or fails on them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from model_code.schema import EXAMPLE_APPLICANTS
from scripts import commands
from scripts.bench_load import python_load, wrk
from scripts.processes import ManagedProcess, free_port

MODEL = "credit-score"


@dataclass(frozen=True)
class Answer:
    """One prediction: when it was sent and answered (monotonic seconds), its status and version."""

    sent: float
    received: float
    status: int | None
    version: str | None
    # The answer's JSON body (application_id, prediction, ...), when there was one.
    body: dict[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass
class Load:
    """``clients`` clients predicting one after another in a thread of their own, and a readiness probe.

    Used as a context manager; ``answers`` and ``readiness`` hold what came back.
    """

    url: str
    clients: int = 8
    answers: list[Answer] = field(default_factory=list)
    readiness: list[int | None] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 60
        while len(self.answers) < self.clients and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.clients + 1)
        async with httpx.AsyncClient(base_url=self.url, timeout=30, limits=limits) as client:
            await asyncio.gather(*(self._client(client, i) for i in range(self.clients)), self._probe(client))

    async def _client(self, client: httpx.AsyncClient, index: int) -> None:
        applicant = EXAMPLE_APPLICANTS["approved" if index % 2 else "rejected"]
        while not self._stop.is_set():
            sent = time.monotonic()
            body: dict[str, Any] | None = None
            try:
                response = await client.post("/api/v1/predict", json=applicant)
                status, payload = response.status_code, response.json()
                body = payload if isinstance(payload, dict) else None
                version = body.get("model_version") if body is not None else None
            except (httpx.HTTPError, ValueError):
                status, version = None, None
            self.answers.append(Answer(sent, time.monotonic(), status, version, body))

    async def _probe(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            try:
                self.readiness.append((await client.get("/api/v1/health/ready")).status_code)
            except httpx.HTTPError:
                self.readiness.append(None)
            await asyncio.sleep(0.2)

    def failed(self) -> list[Answer]:
        """Answers that were not 2xx, or no answer at all."""
        return [a for a in self.answers if a.status is None or not 200 <= a.status < 300]

    def first(self, version: str) -> Answer | None:
        """The earliest answer from ``version``."""
        return min((a for a in self.answers if a.version == version), key=lambda a: a.received, default=None)


def move_alias(tracking_uri: str, alias: str, version: str) -> float:
    """Point ``alias`` at ``version`` through the registry's REST API; the moment it was done."""
    response = httpx.post(
        f"{tracking_uri}/api/2.0/mlflow/registered-models/alias",
        json={"name": MODEL, "alias": alias, "version": version},
        timeout=30,
    )
    response.raise_for_status()
    return time.monotonic()


def serving_state(supervisor_url: str) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"{supervisor_url}/state", timeout=10).json()
    return state


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.2)


@dataclass
class Report:
    settings: dict[str, Any]
    throughput_c32: dict[str, list[float]] = field(default_factory=dict)
    rollouts: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        means = {name: statistics.mean(runs) for name, runs in self.throughput_c32.items()}
        raw = means["raw champion server"]
        lines = ["", f"{'32 clients':<34}{'req/s (rounds)':>34}{'mean':>9}{'/ raw':>8}{'/ off':>8}"]
        for name, runs in self.throughput_c32.items():
            rounds = ", ".join(f"{r:.0f}" for r in runs)
            lines.append(
                f"{name:<34}{rounds:>34}{means[name]:>9.0f}{means[name] / raw:>8.2f}"
                f"{means[name] / means['facade, shadow off']:>8.2f}"
            )
        lines.append("")
        lines.append(
            f"{'rollout under 8 clients':<28}{'move to first new answer':>26}{'start+gate':>12}"
            f"{'requests':>10}{'failed':>8}{'readiness':>11}"
        )
        for r in self.rollouts:
            move = f"v{r['from']} -> v{r['to']}"
            lines.append(
                f"{move:<28}{r['seconds_to_first_answer']:>24.1f} s{r['start_and_gate_seconds']:>10.1f} s"
                f"{r['requests']:>10}{r['failed']:>8}{r['readiness']:>11}"
            )
        lines.append(
            f"alias poll {self.settings['poll_seconds']:.0f} s, facade poll 1 s; "
            f"concurrent scenarios driven by {self.settings['load_generator']}"
        )
        return "\n".join(lines)


def _rollout(load_url: str, tracking_uri: str, supervisor_url: str, to: str, before: str) -> dict[str, Any]:
    with Load(load_url) as load:
        moved = move_alias(tracking_uri, "champion", to)
        _wait(
            lambda: (s := serving_state(supervisor_url))["champion"]["version"] == to and not s["draining"],
            600,
            f"switch to v{to}",
        )
        time.sleep(2)
    first = load.first(to)
    rollout = serving_state(supervisor_url)["rollouts"]["champion"]
    return {
        "from": before,
        "to": to,
        "seconds_to_first_answer": (first.received - moved) if first else float("nan"),
        "start_and_gate_seconds": rollout["start_seconds"],
        "requests": len(load.answers),
        "failed": len(load.failed()),
        "readiness": "/".join(str(s) for s in sorted({str(s) for s in load.readiness})),
    }


def run(args: argparse.Namespace) -> Report:
    root = Path(tempfile.mkdtemp(prefix="credit-score-bench-rollout-"))
    processes: list[ManagedProcess] = []
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    report = Report(
        settings={
            **{k: v for k, v in vars(args).items() if k != "json"},
            "load_generator": "wrk" if use_wrk else "python httpx",
        }
    )

    def start(name: str, argv: list[str], url: str, timeout: float = 300, **env: str) -> ManagedProcess:
        process = ManagedProcess(name, argv, root / f"{name}.log", env=commands.child_env(**env), cwd=root)
        processes.append(process.start())
        process.wait_http(url, timeout=timeout)
        return process

    try:
        port = free_port()
        tracking_uri = f"http://127.0.0.1:{port}"
        start(
            "mlflow-server",
            commands.tracking_server(
                f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", "127.0.0.1", port
            ),
            f"{tracking_uri}/health",
        )
        for seed in (1, 2):
            subprocess.run(
                commands.project_run(
                    f"n_samples={args.n_samples}", f"n_estimators={args.n_estimators}", f"seed={seed}"
                ),
                cwd=root,
                env=commands.child_env(MLFLOW_TRACKING_URI=tracking_uri),
                check=True,
                capture_output=True,
            )
        move_alias(tracking_uri, "champion", "1")
        move_alias(tracking_uri, "challenger", "2")

        scoring_port, supervisor_port = free_port(), free_port()
        supervisor_url = f"http://127.0.0.1:{supervisor_port}"
        start(
            "serving-supervisor",
            commands.serving_supervisor(),
            f"http://127.0.0.1:{scoring_port}/ping",
            MLFLOW_TRACKING_URI=tracking_uri,
            MODEL_NAME=MODEL,
            SERVING_HOST="127.0.0.1",
            SCORING_PORT=str(scoring_port),
            SUPERVISOR_PORT=str(supervisor_port),
            ROLLOUT_POLL_SECONDS=str(args.poll_seconds),
            SHADOW_SAMPLE_RATE=str(args.shadow_rate),
        )
        _wait(lambda: serving_state(supervisor_url).get("challenger") is not None, 600, "challenger served")
        facades = {}
        for name, rate in (
            ("facade, shadow off", 0.0),
            (f"facade, shadow {args.shadow_rate:g}", args.shadow_rate),
        ):
            api_port = free_port()
            facades[name] = f"http://127.0.0.1:{api_port}"
            start(
                name.replace(", ", "-").replace(" ", "-"),
                commands.facade(),
                f"{facades[name]}/api/v1/health/ready",
                timeout=60,
                HOST="127.0.0.1",
                PORT=str(api_port),
                SCORING_URL=f"http://127.0.0.1:{scoring_port}",
                SUPERVISOR_URL=supervisor_url,
                MLFLOW_TRACKING_URI=tracking_uri,
                MODEL_NAME=MODEL,
                SHADOW_SAMPLE_RATE=str(rate),
                MAX_IN_FLIGHT="256",
            )

        champion = serving_state(supervisor_url)["champion"]["url"]
        applicant = EXAMPLE_APPLICANTS["rejected"]
        raw_body = json.dumps({"dataframe_records": [applicant]}).encode()
        targets = [("raw champion server", f"{champion}/invocations", raw_body)]
        targets += [
            (name, f"{url}/api/v1/predict", json.dumps(applicant).encode()) for name, url in facades.items()
        ]
        load = wrk if use_wrk else python_load
        for name, _, _ in targets:
            report.throughput_c32[name] = []
        for index in range(args.rounds):
            # NB: the two facades swap places every round, so that neither always follows the other.
            raw, *both = targets
            for name, url, body in [raw, *(both if index % 2 == 0 else both[::-1])]:
                sample = load(url, body, 32, args.duration)
                report.throughput_c32[name].append(sample.ok / sample.seconds)

        load_url = facades["facade, shadow off"]
        report.rollouts.append(_rollout(load_url, tracking_uri, supervisor_url, "2", "1"))
        report.rollouts.append(_rollout(load_url, tracking_uri, supervisor_url, "1", "2"))
    finally:
        for process in reversed(processes):
            process.stop()
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per throughput round and target"
    )
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds over the three targets")
    parser.add_argument(
        "--poll-seconds", type=float, default=10.0, help="the supervisor's ROLLOUT_POLL_SECONDS"
    )
    parser.add_argument("--shadow-rate", type=float, default=0.1)
    parser.add_argument("--n-samples", type=int, default=20000)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--python-client", action="store_true", help="drive concurrency with httpx even when wrk exists"
    )
    return parser.parse_args(argv)


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
