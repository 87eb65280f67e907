"""``make run``: the whole local stack in one command, stopped cleanly by Ctrl-C.

Starts an MLflow tracking server (SQLite + local artifacts, job execution off), trains with
``mlflow run .`` when the registry has no champion yet, starts the serving supervisor (which serves
the champion with ``mlflow models serve`` and follows the alias when it moves), starts the facade
(recording decisions in SQLite under ``RUN_DIR``),
waits for its readiness and prints where things are.
Every process it starts is stopped (by process group) when it exits; re-running reuses the
trained model kept in ``RUN_DIR``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from model_code.schema import EXAMPLE_APPLICANTS
from model_code.tracking import CHAMPION, STAGE_TO_ALIAS
from scripts import commands
from scripts.processes import PROJECT_ROOT, ManagedProcess, http_status, port_is_free


@dataclass(frozen=True)
class StackConfig:
    """Ports, bind address and state folder, from the environment (see the README)."""

    host: str
    mlflow_port: int
    scoring_port: int
    supervisor_port: int
    api_port: int
    run_dir: Path
    model_name: str
    model_alias: str
    train_args: tuple[str, ...]

    @classmethod
    def from_env(cls) -> StackConfig:
        env = os.environ
        return cls(
            host=env.get("STACK_HOST", "127.0.0.1"),
            mlflow_port=int(env.get("MLFLOW_PORT", "5001")),
            scoring_port=int(env.get("SCORING_PORT", "5002")),
            supervisor_port=int(env.get("SUPERVISOR_PORT", "5003")),
            api_port=int(env.get("API_PORT", "8000")),
            run_dir=Path(env.get("RUN_DIR", PROJECT_ROOT / ".run")).resolve(),
            model_name=env.get("MODEL_NAME", "credit-score"),
            model_alias=_alias(env),
            train_args=tuple(env.get("TRAIN_ARGS", "").split()),
        )

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"


def _alias(env: Mapping[str, str]) -> str:
    """MODEL_ALIAS, or the alias a deprecated MODEL_STAGE maps to (with a warning), or champion."""
    if env.get("MODEL_ALIAS"):
        return env["MODEL_ALIAS"]
    # NB: registry stages are deprecated in MLflow; MODEL_STAGE is still understood, as in the facade.
    stage = env.get("MODEL_STAGE", "")
    if not stage:
        return CHAMPION
    if stage.lower() not in STAGE_TO_ALIAS:
        raise SystemExit("[make run] MODEL_STAGE must be Production or Staging; use MODEL_ALIAS instead")
    alias = STAGE_TO_ALIAS[stage.lower()]
    _say(f"MODEL_STAGE is deprecated: serving alias @{alias}; set MODEL_ALIAS={alias} instead")
    return alias


def _say(message: str) -> None:
    print(f"[make run] {message}", flush=True)  # noqa: T201 - this is a console program


def _child_env(config: StackConfig, **extra: str) -> dict[str, str]:
    return commands.child_env(MLFLOW_TRACKING_URI=config.tracking_uri, **extra)


def champion_exists(config: StackConfig) -> bool:
    query = urllib.parse.urlencode({"name": config.model_name, "alias": config.model_alias})
    return http_status(f"{config.tracking_uri}/api/2.0/mlflow/registered-models/alias?{query}") == 200


class Stack:
    """The processes of the local stack, stopped in reverse order of their start."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: list[ManagedProcess] = []
        self.logs = config.run_dir / "logs"
        self.records_path = config.run_dir / "decisions.db"

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.logs / f"{name}.log", env=env).start()
        self.processes.append(process)
        _say(f"started {name} (pid {process.pid}), log: {process.log_path}")
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.running():
                _say(f"stopping {process.name} (pid {process.pid})")
            process.stop()
        self.processes.clear()

    def up(self) -> None:
        c = self.config
        ports = (c.mlflow_port, c.scoring_port, c.supervisor_port, c.api_port)
        busy = [p for p in ports if not port_is_free(c.host, p)]
        if busy:
            raise SystemExit(
                f"[make run] port(s) {busy} on {c.host} are in use; stop what holds them or set "
                "MLFLOW_PORT / SCORING_PORT / SUPERVISOR_PORT / API_PORT"
            )
        c.run_dir.mkdir(parents=True, exist_ok=True)

        tracking = self.start(
            "mlflow-server",
            commands.tracking_server(
                f"sqlite:///{c.run_dir / 'mlflow.db'}", c.run_dir / "artifacts", c.host, c.mlflow_port
            ),
            commands.child_env(),
        )
        tracking.wait_http(f"{c.tracking_uri}/health", timeout=120)
        _say(f"MLflow tracking server ready at {c.tracking_uri}")

        if champion_exists(c):
            _say(f"reusing models:/{c.model_name}@{c.model_alias}")
        else:
            _say(f"no models:/{c.model_name}@{c.model_alias} yet: training with `mlflow run .`")
            argv = commands.project_run(f"model_name={c.model_name}") + list(c.train_args)
            subprocess.run(argv, cwd=PROJECT_ROOT, env=_child_env(c), check=True)
            if not champion_exists(c):
                raise SystemExit(f"[make run] training finished but there is no @{c.model_alias}")

        # NB: ROLLOUT_POLL_SECONDS, SHADOW_SAMPLE_RATE, SCORING_WORKERS and the other ROLLOUT_* settings
        # pass through from the environment; the stable port's /ping answers once the champion's
        # server passed its gate.
        supervisor = self.start(
            "serving-supervisor",
            commands.serving_supervisor(),
            _child_env(
                c,
                MODEL_NAME=c.model_name,
                MODEL_ALIAS=c.model_alias,
                SERVING_HOST=c.host,
                SCORING_PORT=str(c.scoring_port),
                SUPERVISOR_PORT=str(c.supervisor_port),
            ),
        )
        supervisor.wait_http(f"http://{c.host}:{c.scoring_port}/ping", timeout=300)
        _say(f"champion served; raw scoring at http://{c.host}:{c.scoring_port}/invocations")

        api = self.start(
            "facade",
            commands.facade(),
            _child_env(
                c,
                HOST=c.host,
                PORT=str(c.api_port),
                SCORING_URL=f"http://{c.host}:{c.scoring_port}",
                SUPERVISOR_URL=f"http://{c.host}:{c.supervisor_port}",
                MODEL_NAME=c.model_name,
                MODEL_ALIAS=c.model_alias,
                # NB: every decision is recorded before it is answered; the embedded store is SQLite
                # (WAL) in RUN_DIR, kept across runs like the trained model.
                DECISIONS_DATABASE_URL=f"sqlite:///{self.records_path}",
            ),
        )
        api.wait_http(f"http://{c.host}:{c.api_port}/api/v1/health/ready", timeout=60)
        self.banner()

    def banner(self) -> None:
        c = self.config
        api = f"http://{c.host}:{c.api_port}"
        body = json.dumps(EXAMPLE_APPLICANTS["approved"])
        print(  # noqa: T201 - this is a console program
            f"""
Credit Score stack is ready (Ctrl-C stops everything):
  API            {api}/api/v1   (docs: {api}/docs, redoc: {api}/redoc)
  Metrics        {api}/metrics
  Scoring server http://{c.host}:{c.scoring_port}/invocations   (the champion, whichever version)
  Serving state  http://{c.host}:{c.supervisor_port}/state
  MLflow UI      {c.tracking_uri}
  Decisions      {api}/api/v1/decisions   (recorded in {self.records_path})

Try:
  curl -s -X POST {api}/api/v1/predict -H 'Content-Type: application/json' \\
    -d '{body}'
""",
            flush=True,
        )

    def watch(self) -> None:
        """Block until a signal arrives or a process dies (then say which, with its log)."""
        while True:
            for process in self.processes:
                if not process.running():
                    raise SystemExit(f"[make run] {process.name} exited unexpectedly:\n{process.log_tail()}")
            time.sleep(0.5)


def _raise_interrupt(signum: int, _: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    stack = Stack(StackConfig.from_env())
    # NB: SIGTERM (from a supervisor or `kill`) must clean up exactly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        stack.up()
        stack.watch()
    except KeyboardInterrupt:
        _say("interrupted")
    finally:
        # NB: a second Ctrl-C must not abort the clean-up and orphan the servers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        _say("all processes stopped")


if __name__ == "__main__":
    main()
