"""``make bench``: our stack against the raw MLflow scoring server and the serving peers, side by side.

Trains one model (or reuses a tracking server's champion), downloads it from the registry and
serves that same model every way, one worker each, on free 127.0.0.1 ports: the raw scoring
server on the plain scikit-learn path (the baseline) and on our fast exact path, the facade in
front of the latter, and the peers (``scripts.bench_peers``): BentoML with and without adaptive
batching and MLServer, each in a virtual environment of its own serving the same skops pipeline,
and a one-hop server calling our fast path directly, the limit. Every server must answer the
pyfunc's probabilities to the last bit before it is measured. Then rounds: in each round every
scenario runs against every server in turn, the order rotating, so a change in the machine's
load hits them all. It reports latency, throughput, batch rows/s, cores used per component,
ratios against the raw server and the best peer, in-process predict latency and memory.
A benchmark reports numbers; it never passes or fails on them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from model_code.schema import EXAMPLE_APPLICANTS
from model_code.tracking import CHAMPION
from scripts import bench_load, bench_procs, commands
from scripts.bench_peers import envs, servers
from scripts.bench_peers.common import BENTO_MAX_BATCH_ROWS
from scripts.bench_peers.servers import Launch, Protocol, VettedPipeline
from scripts.processes import ManagedProcess, free_port

PEERS = ("bentoml", "bentoml-batching", "mlserver")  # the "best peer" of a ratio is one of these
# Twins of the facade, each with one feature switched on, in front of the same scoring server: what
# the feature costs is the twin's figure over the facade's, measured in the same rounds.
# NB: a limit no benchmark reaches: what is measured is the cost of counting, not of refusing.
GENEROUS_LIMIT = "1000000/second"
# NB: every decision recorded, in SQLite WAL in the bench's folder ({root}) as `make run` has it,
# or in the database of --records-url (BENCH_RECORDS_URL).
RECORDS_VARIANT = "facade-with-records"
VARIANTS: dict[str, dict[str, str]] = {
    "facade-rate-limited": {"RATE_LIMIT": GENEROUS_LIMIT},
    RECORDS_VARIANT: {"DECISIONS_DATABASE_URL": "sqlite:///{root}/decisions.db"},
}
LIMIT = "one-hop"
OPTIONAL = (*PEERS, LIMIT)  # what --peers chooses from
ENV_OF = {"bentoml": "bentoml", "bentoml-batching": "bentoml", "mlserver": "mlserver"}


@dataclass
class Server:
    """One way of serving the model: its base URL, its protocol, and the processes it runs on."""

    name: str
    label: str
    url: str
    protocol: Protocol
    components: dict[str, ManagedProcess]
    max_rows: int | None = None  # the largest batch it is sent; None: every batch size

    def takes(self, scenario: Scenario) -> bool:
        return self.max_rows is None or scenario.rows <= self.max_rows

    def endpoint(self, rows: int) -> str:
        return self.url + (self.protocol.path if rows == 1 else self.protocol.batch_path)


@dataclass(frozen=True)
class Scenario:
    """Single applications over ``connections`` connections, or batches of ``rows`` rows."""

    key: str
    connections: int = 1
    rows: int = 1

    @property
    def is_batch(self) -> bool:
        return self.rows > 1


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    single = [Scenario("sequential")] + [
        Scenario(f"{c} connections", connections=c) for c in args.concurrency
    ]
    return single + [Scenario(f"batch {rows}", rows=rows) for rows in args.batch_rows]


@dataclass(frozen=True)
class Column:
    """One figure of the table: a scenario's metric, and whether more is better."""

    title: str
    scenario: str
    metric: str
    higher_is_better: bool


def columns(args: argparse.Namespace) -> list[Column]:
    cols = [
        Column("sequential p50 (ms)", "sequential", "p50_ms", False),
        Column("sequential p99 (ms)", "sequential", "p99_ms", False),
    ]
    cols += [
        Column(f"{c} connections (req/s)", f"{c} connections", "per_second", True) for c in args.concurrency
    ]
    cols += [
        Column(f"{r:,}-row batch (rows/s)", f"batch {r}", "rows_per_second", True) for r in args.batch_rows
    ]
    return cols


@dataclass
class Report:
    """Every round's samples, their summary, ratios and cores: the ``--json`` file is its asdict()."""

    settings: dict[str, Any]
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    rounds: list[dict[str, dict[str, dict[str, Any]]]] = field(default_factory=list)
    summary: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    ratios: dict[str, dict[str, Any]] = field(default_factory=dict)
    machine: dict[str, dict[str, float]] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    in_process_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    def value(self, column: Column, server: str) -> float | None:
        figure = self.summary.get(column.scenario, {}).get(server, {}).get(column.metric)
        return None if figure is None else float(figure)

    def table(self) -> str:
        cols = [Column(**c) for c in self.settings["columns"]]
        names = list(self.servers)
        width = max(len(n) for n in [*names, "facade / raw-sklearn"]) + 2
        lines = ["", f"{'server':<{width}}" + "".join(_cell(_short(c.title)) for c in cols)]
        for name in names:
            lines.append(f"{name:<{width}}" + "".join(_cell(self.value(c, name)) for c in cols))
        lines.append("")
        lines.append("ratios of the facade's figure to another's (for ms lower is better, else higher):")
        for other in ["raw-sklearn", "raw-fast", "best peer", LIMIT]:
            ratios = [self.ratios.get(c.title, {}).get(other) for c in cols]
            if any(r is not None for r in ratios):
                row = f"{'facade / ' + other:<{width}}"
                lines.append(row + "".join(_cell(r, ".2f") for r in ratios))
        for variant in VARIANTS:
            ratios = [self.ratios.get(c.title, {}).get(variant) for c in cols]
            if any(r is not None for r in ratios):
                lines.append(f"{variant + ' / facade':<{width}}" + "".join(_cell(r, ".2f") for r in ratios))
        best = [(c, self.ratios.get(c.title, {}).get("best peer name")) for c in cols]
        if any(b for _, b in best):
            lines.append("best peer: " + "; ".join(f"{_short(c.title)} {b}" for c, b in best if b))
        lines.append("")
        lines.append("cores used (CPU seconds of each server's processes / wall time), by scenario:")
        keys = list(self.summary)
        lines.append(f"{'':<{width + 18}}" + "".join(_cell(_short(k)) for k in keys))
        for name in names:
            for component in self.servers[name]["components"]:
                cores = [self.summary[k].get(name, {}).get("cores", {}).get(component) for k in keys]
                lines.append(f"{name:<{width}}{component[:17]:<18}" + "".join(_cell(c, ".2f") for c in cores))
        client = [statistics.fmean(v["client_cores"] for v in self.summary[k].values()) for k in keys]
        lines.append(f"{'load generator (mean)':<{width + 18}}" + "".join(_cell(c, ".2f") for c in client))
        others = [self.machine.get(k, {}).get("others_cores") for k in keys]
        lines.append(f"{'rest of the machine':<{width + 18}}" + "".join(_cell(c, ".2f") for c in others))
        if self.in_process_ms:
            lines += self._in_process_lines()
        lines.append("")
        lines.append("RSS after the run: " + ", ".join(f"{k} {v:.0f} MB" for k, v in self.rss_mb.items()))
        for name, reason in self.unavailable.items():
            lines.append(f"not measured: {name}: {reason}")
        lines.append(
            f"load: {self.settings.get('load_generator')}, {self.settings['rounds']} interleaved rounds, "
            f"{self.settings['duration']:g} s per server and scenario a round"
        )
        return "\n".join(lines)

    def _in_process_lines(self) -> list[str]:
        paths = next(iter(self.in_process_ms.values()))
        lines = ["", "in-process ms per call   " + "".join(f"{name:>18}" for name in paths)]
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
        return lines


def _short(title: str) -> str:
    """A table heading of at most CELL - 1 characters."""
    for long, short in (
        ("sequential", "seq"),
        (" connections", " conn"),
        ("-row batch", " rows/s"),
        (" (ms)", " ms"),
        (" (req/s)", " req/s"),
        (" (rows/s)", ""),
    ):
        title = title.replace(long, short)
    if title.startswith("batch "):
        title = f"{int(title.split()[1]):,} rows"
    return title


CELL = 15


def _cell(value: float | str | None, fmt: str = "") -> str:
    if value is None:
        value = "-"
    if isinstance(value, str):
        return f"{value[: CELL - 1]:>{CELL}}"
    if not fmt:
        fmt = ",.0f" if abs(value) >= 100 else ".1f"
    return f"{value:>{CELL}{fmt}}"


def summarise(report: Report, cols: list[Column]) -> None:
    """Pool every round's samples: rates over the summed time, latencies as the rounds' median."""
    for key in report.rounds[0]:
        report.summary[key] = {}
        for name in report.rounds[0][key]:
            samples = [r[key][name] for r in report.rounds if name in r.get(key, {})]
            seconds = sum(s["seconds"] for s in samples)
            wall = sum(s["wall_s"] for s in samples)
            ok = sum(s["requests"] - s["errors"] for s in samples)
            rows = samples[0]["rows"]
            entry: dict[str, Any] = {
                "requests": sum(s["requests"] for s in samples),
                "errors": sum(s["errors"] for s in samples),
                "socket_errors": sum(s.get("socket_errors", 0) for s in samples),
                "p50_ms": statistics.median(s["p50_ms"] for s in samples) if ok else None,
                "p99_ms": statistics.median(s["p99_ms"] for s in samples) if ok else None,
                "per_second": ok / seconds if seconds and ok else None,
                "rows_per_second": rows * ok / seconds if seconds and ok else None,
                "cores": {c: sum(s["cpu_s"][c] for s in samples) / wall for c in samples[0]["cpu_s"]},
                "client_cores": sum(s["client_cpu_s"] for s in samples) / wall,
                "rounds_p50_ms": [s["p50_ms"] for s in samples],
                "rounds_per_second": [
                    (s["requests"] - s["errors"]) / s["seconds"] if s["seconds"] else 0.0 for s in samples
                ],
            }
            report.summary[key][name] = entry
        walls = [s for r in report.rounds for s in r[key].values()]
        wall = sum(s["wall_s"] for s in walls)
        ours = sum(sum(s["cpu_s"].values()) + s["client_cpu_s"] for s in walls)
        busy = sum(s["machine_busy_s"] for s in walls)
        report.machine[key] = {"busy_cores": busy / wall, "others_cores": max(busy - ours, 0.0) / wall}
    for column in cols:
        facade = report.value(column, "facade")
        if not facade:
            continue
        ratios: dict[str, Any] = {}
        for other in ["raw-sklearn", "raw-fast", LIMIT]:
            figure = report.value(column, other)
            if figure:
                ratios[other] = facade / figure
        # NB: a figure of 0 (no answer at all in a scenario) is no figure to divide by.
        peers = {p: v for p in PEERS if (v := report.value(column, p))}
        if peers:
            best = (max if column.higher_is_better else min)(peers, key=peers.__getitem__)
            ratios["best peer"] = facade / peers[best]
            ratios["best peer name"] = best
        for variant in VARIANTS:
            figure = report.value(column, variant)
            if figure:
                ratios[variant] = figure / facade
        report.ratios[column.title] = ratios


def measure(server: Server, scenario: Scenario, body: bytes, args: argparse.Namespace) -> dict[str, Any]:
    """One scenario against one server, with the CPU its processes and the whole machine spent."""
    url = server.endpoint(scenario.rows)
    before, busy = bench_procs.snapshot(), bench_procs.machine_busy_seconds()
    started = time.perf_counter()
    if scenario.is_batch:
        sample = bench_load.batches(url, body, args.batch_repeats)
    elif args.use_wrk:
        sample = bench_load.wrk(url, body, scenario.connections, args.duration)
    else:
        sample = bench_load.python_load(url, body, scenario.connections, args.duration)
    wall = time.perf_counter() - started
    busy, after = bench_procs.machine_busy_seconds() - busy, bench_procs.snapshot()
    cpu = {
        label: bench_procs.cpu_seconds(p.pid, after) - bench_procs.cpu_seconds(p.pid, before)
        for label, p in server.components.items()
    }
    return {**sample.as_dict(), "rows": scenario.rows, "wall_s": wall, "cpu_s": cpu, "machine_busy_s": busy}


class ProbabilityMismatch(RuntimeError):
    """A server answered other probabilities than the pyfunc: it is not serving the same model."""


def check_identical(server: Server, pyfunc: Any, sample: list[dict[str, Any]]) -> None:
    """The README's two applicants, one at a time, and a batch: bit-identical to the in-process pyfunc."""
    from model_code.pyfunc import model_input

    protocol = server.protocol
    for kind, row in EXAMPLE_APPLICANTS.items():
        expected = float(pyfunc.predict(model_input([row]))["rejection_probability"].iloc[0])
        got = protocol.risk_one(bench_load.post_json(server.endpoint(1), protocol.wrap_one(dict(row))))
        if got != expected:
            raise ProbabilityMismatch(
                f"{server.name}: {got!r} for the {kind} applicant, the pyfunc {expected!r}"
            )
    expected_many = pyfunc.predict(model_input(sample))["rejection_probability"].tolist()
    got_many = protocol.risk_many(
        bench_load.post_json(server.endpoint(len(sample)), protocol.wrap_many(sample))
    )
    differ = [i for i, (a, b) in enumerate(zip(got_many, expected_many, strict=True)) if a != b]
    if len(got_many) != len(expected_many) or differ:
        raise ProbabilityMismatch(
            f"{server.name}: {len(differ)} of {len(sample)} batch rows differ from the pyfunc"
        )


def in_process(pyfunc: Any, sizes: list[int], repeats: int) -> dict[str, dict[str, float]]:
    """Median ms per call: scikit-learn pipeline, the fast path, and MLflow's pyfunc.predict."""
    from model_code.pyfunc import model_input
    from model_code.validation import validate
    from training.data import TARGET, generate_applicants

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


def vet_pipeline(model_dir: Path) -> VettedPipeline:
    """The downloaded model's skops file, checked by the pyfunc's own trust rules."""
    import skops.io
    from mlflow.models import Model

    from model_code.pyfunc import PIPELINE_ARTIFACT, load_pipeline

    flavor = Model.load(str(model_dir)).flavors["python_function"]
    path = model_dir / flavor["artifacts"][PIPELINE_ARTIFACT]["path"]
    load_pipeline(path)  # raises on any type the pyfunc would not trust
    return VettedPipeline(path, tuple(skops.io.get_untrusted_types(file=path)))


class Bench:
    """The processes of one run, started on free ports and stopped (with their descendants) at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: list[ManagedProcess] = []

    def start(self, name: str, argv: list[str], **env: str) -> ManagedProcess:
        process = ManagedProcess(
            name, argv, self.root / f"{name}.log", env=commands.child_env(**env), cwd=self.root
        )
        self.processes.append(process.start())
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            bench_procs.stop_tree(process)


def _label(name: str) -> str:
    return {
        "raw-sklearn": "raw `mlflow models serve`, plain scikit-learn",
        "raw-fast": "raw `mlflow models serve`, our fast path",
        "facade": "our facade → raw MLflow (fast path)",
        "bentoml": f"BentoML {envs.pinned_version('bentoml')} (scikit-learn)",
        "bentoml-batching": f"BentoML {envs.pinned_version('bentoml')} with adaptive batching",
        "mlserver": f"MLServer {envs.pinned_version('mlserver')} (scikit-learn)",
        LIMIT: "one hop: a single Python server calling our fast path",
        "facade-rate-limited": f"our facade with RATE_LIMIT={GENEROUS_LIMIT}",
        RECORDS_VARIANT: "our facade recording every decision (SQLite WAL, or --records-url)",
    }[name]


def new_report(args: argparse.Namespace) -> Report:
    report = Report(
        settings={
            k: v for k, v in vars(args).items() if k not in {"json", "train", "peer_cache", "records_url"}
        }
    )
    report.settings["columns"] = [asdict(c) for c in columns(args)]
    report.settings["peer_cache"] = str(args.peer_cache)
    report.settings["peer_pins"] = {
        kind: list(envs.requirements(kind)) for kind in sorted(set(ENV_OF.values()))
    }
    return report


def run(args: argparse.Namespace, report: Report) -> Report:
    import mlflow

    from training.data import TARGET, generate_applicants

    cols = columns(args)
    root = Path(tempfile.mkdtemp(prefix="credit-score-bench-"))
    peer_envs: dict[str, envs.PeerEnv] = {}
    for kind in sorted({ENV_OF[p] for p in args.peers if p in ENV_OF}):
        try:
            _say(f"peer environment {kind}: {envs.env_path(kind, args.peer_cache)}")
            peer_envs[kind] = envs.ensure(kind, args.peer_cache, root / f"pip-{kind}.log")
        except envs.PeerUnavailable as exc:
            report.unavailable.update({p: str(exc) for p in args.peers if ENV_OF.get(p) == kind})
    bench = Bench(root)
    try:
        tracking_uri = args.tracking_uri
        if tracking_uri is None:
            port = free_port()
            tracking_uri = f"http://127.0.0.1:{port}"
            tracking = bench.start(
                "mlflow-server",
                commands.tracking_server(
                    f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", "127.0.0.1", port
                ),
            )
            tracking.wait_http(f"{tracking_uri}/health", timeout=180)
            _say("training the champion")
            subprocess.run(
                commands.project_run(*(f"{k}={v}" for k, v in args.train.items())),
                cwd=root,
                env=commands.child_env(MLFLOW_TRACKING_URI=tracking_uri),
                check=True,
                capture_output=True,
            )
        model_uri = f"models:/{args.model_name}@{CHAMPION}"
        # NB: a models:/ URI is resolved by the registry, whose URI follows the tracking URI.
        mlflow.set_tracking_uri(tracking_uri)
        model_dir = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(root / "champion"))
        )
        pipeline = vet_pipeline(model_dir)
        pyfunc = mlflow.pyfunc.load_model(str(model_dir))
        launched = _launch_all(bench, args, report, tracking_uri, model_uri, model_dir, pipeline, peer_envs)
        sample = json.loads(
            generate_applicants(max(args.batch_rows), seed=5).drop(columns=[TARGET]).to_json(orient="records")
        )
        for server in launched:
            check_identical(server, pyfunc, sample[: min([*args.batch_rows, server.max_rows or len(sample)])])
            report.servers[server.name] = {
                "label": _label(server.name),
                "components": list(server.components),
            }
        _say(f"all {len(launched)} servers answer the pyfunc's probabilities bit for bit; measuring")
        args.use_wrk = shutil.which("wrk") is not None and not args.python_client
        report.settings["load_generator"] = (
            "wrk (batches: one keep-alive client)" if args.use_wrk else "httpx"
        )
        run_rounds(report, launched, scenarios(args), sample, args)
        summarise(report, cols)
        procs = bench_procs.snapshot()
        # NB: per process, each once (the facade's scoring server is raw-fast's), tracking server aside.
        report.rss_mb = {
            p.name: bench_procs.rss_mb(p.pid, procs) for p in bench.processes if p.name != "mlflow-server"
        }
        if args.in_process_sizes:
            report.in_process_ms = in_process(pyfunc, args.in_process_sizes, args.in_process_repeats)
    except BaseException:
        bench.stop()
        _say(f"failed; the servers' logs are kept in {root}")
        raise
    bench.stop()
    shutil.rmtree(root, ignore_errors=True)
    return report


def _launch_all(
    bench: Bench,
    args: argparse.Namespace,
    report: Report,
    tracking_uri: str,
    model_uri: str,
    model_dir: Path,
    pipeline: VettedPipeline,
    peer_envs: dict[str, envs.PeerEnv],
) -> list[Server]:
    """Start every server at once (they load in parallel), then wait for each to be ready."""
    pending: list[tuple[Server, str, float]] = []
    ports: dict[str, int] = {}
    for name, inference in (("raw-sklearn", "sklearn"), ("raw-fast", "fast")):
        ports[name] = port = free_port()
        process = bench.start(
            name,
            commands.model_server(model_uri, "127.0.0.1", port),
            MLFLOW_TRACKING_URI=tracking_uri,
            CREDIT_SCORE_INFERENCE=inference,
        )
        url = f"http://127.0.0.1:{port}"
        pending.append(
            (Server(name, _label(name), url, servers.MLFLOW, {"scoring server": process}), "/ping", 180)
        )
    for name in args.peers:
        if name in report.unavailable:
            continue
        port = free_port()
        launch = _peer_launch(name, port, bench.root, model_dir, pipeline, peer_envs)
        process = bench.start(name, launch.argv, **launch.env)
        protocol = {LIMIT: servers.ONE_HOP, "mlserver": servers.MLSERVER}.get(name, servers.BENTOML)
        url = f"http://127.0.0.1:{port}"
        # NB: BentoML's batching splits a big request into jobs of its batch size that queue behind
        # each other; the average wait it learns from them then holds lone requests for seconds.
        # Batches go to the plain BentoML API, as a user of both would send them.
        max_rows = BENTO_MAX_BATCH_ROWS if name == "bentoml-batching" else None
        server = Server(name, _label(name), url, protocol, {"server": process}, max_rows)
        pending.append((server, launch.ready_path, 300))
    launched: list[Server] = []
    for server, ready, timeout in pending:
        process = next(iter(server.components.values()))
        try:
            process.wait_http(server.url + ready, timeout=timeout)
        except (RuntimeError, TimeoutError) as exc:
            if server.name not in OPTIONAL:
                raise
            report.unavailable[server.name] = (
                f"did not start: {str(exc).splitlines()[0]} (log: {process.log_path})"
            )
            bench_procs.stop_tree(process)
            continue
        launched.append(server)
        if server.name == "raw-fast":
            launched.append(_start_facade(bench, args, tracking_uri, server))
            launched += [
                _start_facade(bench, args, tracking_uri, server, name, VARIANTS[name])
                for name in args.variants
            ]
    return launched


def _peer_launch(
    name: str,
    port: int,
    root: Path,
    model_dir: Path,
    pipeline: VettedPipeline,
    peer_envs: dict[str, envs.PeerEnv],
) -> Launch:
    if name == LIMIT:
        return servers.one_hop(sys.executable, port, model_dir)
    if name == "mlserver":
        return servers.mlserver(
            peer_envs["mlserver"], (port, free_port(), free_port()), pipeline, root / "mlserver"
        )
    return servers.bentoml(
        peer_envs["bentoml"], port, pipeline, root / f"{name}-home", name == "bentoml-batching"
    )


def _start_facade(
    bench: Bench,
    args: argparse.Namespace,
    tracking_uri: str,
    scoring: Server,
    name: str = "facade",
    settings: dict[str, str] | None = None,
) -> Server:
    """The facade (or a twin with ``settings`` added) in front of the fast-path scoring server, its
    limits raised above the bench's load."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = bench.start(
        name,
        commands.facade(),
        HOST="127.0.0.1",
        PORT=str(port),
        SCORING_URL=scoring.url,
        MLFLOW_TRACKING_URI=tracking_uri,
        MODEL_NAME=args.model_name,
        MAX_BATCH_SIZE=str(max(args.batch_rows)),
        MAX_BODY_BYTES=str(64 * 1024 * 1024),
        MAX_IN_FLIGHT=str(4 * max(args.concurrency) + 64),
        **{key: value.replace("{root}", str(bench.root)) for key, value in (settings or {}).items()},
        **(
            {"DECISIONS_DATABASE_URL": args.records_url}
            if name == RECORDS_VARIANT and args.records_url
            else {}
        ),
    )
    process.wait_http(f"{url}/api/v1/health/ready", timeout=60)
    components = {"facade": process, "scoring server": scoring.components["scoring server"]}
    return Server(name, _label(name), url, servers.FACADE, components)


def run_rounds(
    report: Report,
    launched: list[Server],
    plan: list[Scenario],
    sample: list[dict[str, Any]],
    args: argparse.Namespace,
) -> None:
    """Warm every server up, then the rounds: each scenario against every server, the order rotating."""
    bodies = {
        (server.name, scenario.key): json.dumps(_payload(server.protocol, scenario, sample)).encode()
        for server in launched
        for scenario in plan
        if server.takes(scenario)
    }
    warm = plan[1] if len(plan) > 1 and not plan[1].is_batch else plan[0]
    for server in launched:
        # NB: a second of load and one batch of each size first: connection pools, caches and
        # BentoML's batching optimizer settle before anything is recorded.
        body = bodies[server.name, warm.key]
        if args.use_wrk:
            bench_load.wrk(server.endpoint(1), body, warm.connections, 1)
        else:
            bench_load.python_load(server.endpoint(1), body, warm.connections, 1)
        for scenario in plan:
            if scenario.is_batch and server.takes(scenario):
                bench_load.batches(server.endpoint(scenario.rows), bodies[server.name, scenario.key], 1)
    for index in range(args.rounds):
        _say(f"round {index + 1} of {args.rounds}")
        results: dict[str, dict[str, dict[str, Any]]] = {}
        order = launched[index % len(launched) :] + launched[: index % len(launched)]
        for scenario in plan:
            results[scenario.key] = {}
            for server in (s for s in order if s.takes(scenario)):
                results[scenario.key][server.name] = measure(
                    server, scenario, bodies[server.name, scenario.key], args
                )
        # NB: keep the servers' order in the report whatever the round's order was.
        report.rounds.append(
            {k: {s.name: v[s.name] for s in launched if s.name in v} for k, v in results.items()}
        )


def _payload(protocol: Protocol, scenario: Scenario, sample: list[dict[str, Any]]) -> object:
    if scenario.is_batch:
        return protocol.wrap_many(sample[: scenario.rows])
    # NB: one applicant of each decision: the approved one sequentially, the rejected one under load.
    kind = "approved" if scenario.connections == 1 else "rejected"
    return protocol.wrap_one(dict(EXAMPLE_APPLICANTS[kind]))


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)  # noqa: T201 - progress of a long run


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _names_from(kind: str, options: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated choice of ``options`` (or all, or none), in their order."""

    def parse(text: str) -> list[str]:
        if text == "none":
            return []
        if text == "all":
            return list(options)
        chosen = [name for name in text.split(",") if name]
        unknown = sorted(set(chosen) - set(options))
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {unknown}; choose from {', '.join(options)}, all, none"
            )
        return [name for name in options if name in chosen]

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--peers",
        type=_names_from("peers", OPTIONAL),
        default=list(OPTIONAL),
        help=f"comma-separated among {', '.join(OPTIONAL)}; or all (the default), or none",
    )
    parser.add_argument(
        "--variants",
        type=_names_from("variants", list(VARIANTS)),
        default=list(VARIANTS),
        help=f"twins of the facade with a feature on: comma-separated among {', '.join(VARIANTS)}; "
        "or all (the default), or none",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every scenario")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per server, scenario and round")
    parser.add_argument("--concurrency", type=_ints, default=[8, 32, 64])
    parser.add_argument("--batch-rows", type=_ints, default=[1000, 10000])
    parser.add_argument("--batch-repeats", type=int, default=3, help="batches per server, size and round")
    parser.add_argument("--in-process-sizes", type=_ints, default=[1, 10, 100, 1000, 10000])
    parser.add_argument("--in-process-repeats", type=int, default=200)
    parser.add_argument(
        "--tracking-uri", default=None, help="reuse this tracking server's champion instead of training"
    )
    parser.add_argument("--model-name", default="credit-score")
    parser.add_argument("--n-samples", type=int, default=20000)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=12)
    parser.add_argument(
        "--peer-cache",
        type=Path,
        default=envs.default_cache(),
        help="where the peers' virtual environments are kept between runs",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--python-client", action="store_true", help="drive the load with httpx even when wrk exists"
    )
    parser.add_argument(
        "--records-url",
        default=os.environ.get("BENCH_RECORDS_URL"),
        help=f"the database of {RECORDS_VARIANT} (default: SQLite WAL in the bench's folder)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or not args.concurrency or not args.batch_rows:
        parser.error("--rounds must be at least 1; --concurrency and --batch-rows need a value each")
    args.train = {
        "n_samples": args.n_samples,
        "n_estimators": args.n_estimators,
        "max_depth": args.max_depth,
        "model_name": args.model_name,
    }
    return args


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv)
    report = new_report(args)
    try:
        run(args, report)
    finally:
        # NB: written even when the run fails: the rounds measured so far are kept.
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(asdict(report), indent=2))
    print(report.table(), flush=True)  # noqa: T201 - a console report
    return report


if __name__ == "__main__":
    main()
