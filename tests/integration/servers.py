"""The real servers of the integration tests, started on free 127.0.0.1 ports and stopped by group.

One place for the exact commands, which are the ones ``make run`` and Compose use.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.tracking import MlflowClient

from scripts import commands
from scripts.processes import ManagedProcess, free_port
from tests.conftest import TrackingStore, mlflow_run

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Stack:
    """Tracking server, a trained champion, the scoring server and the facade."""

    root: Path
    backend_store_uri: str
    expose_metrics: bool = False
    mlflow_port: int = field(default_factory=free_port)
    scoring_port: int = field(default_factory=free_port)
    supervisor_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    processes: list[ManagedProcess] = field(default_factory=list)
    scoring: ManagedProcess | None = None
    supervisor: ManagedProcess | None = None
    facade: ManagedProcess | None = None

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def scoring_url(self) -> str:
        return f"http://127.0.0.1:{self.scoring_port}"

    @property
    def supervisor_url(self) -> str:
        return f"http://127.0.0.1:{self.supervisor_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def store(self) -> TrackingStore:
        return TrackingStore(self.tracking_uri, self.root)

    def _start(self, name: str, argv: list[str], **env: str) -> ManagedProcess:
        env_ = commands.child_env(**env)
        process = ManagedProcess(name, argv, self.root / f"{name}.log", env=env_, cwd=self.root)
        self.processes.append(process.start())
        return process

    def start_tracking(self) -> None:
        tracking = self._start(
            "mlflow-server",
            commands.tracking_server(
                self.backend_store_uri,
                self.root / "artifacts",
                "127.0.0.1",
                self.mlflow_port,
                metrics_dir=self.root / "mlflow-metrics" if self.expose_metrics else None,
            ),
        )
        tracking.wait_http(f"{self.tracking_uri}/health", timeout=120)
        MlflowClient(tracking_uri=self.tracking_uri).create_experiment(self.store.experiment)

    def train(self, *params: str) -> None:
        mlflow_run(self.store, *params)

    def start_scoring(self) -> None:
        self.scoring = self._start(
            "scoring-server",
            commands.model_server("models:/credit-score@champion", "127.0.0.1", self.scoring_port),
            MLFLOW_TRACKING_URI=self.tracking_uri,
        )
        self.scoring.wait_http(f"{self.scoring_url}/ping", timeout=180)

    def start_supervisor(self, **env: str) -> None:
        """The serving supervisor, as `make run` starts it (its stable port is ``scoring_port``)."""
        self.supervisor = self._start(
            "serving-supervisor",
            commands.serving_supervisor(),
            **{
                "MLFLOW_TRACKING_URI": self.tracking_uri,
                "MODEL_NAME": "credit-score",
                "SERVING_HOST": "127.0.0.1",
                "SCORING_PORT": str(self.scoring_port),
                "SUPERVISOR_PORT": str(self.supervisor_port),
                **env,
            },
        )
        self.supervisor.wait_http(f"{self.scoring_url}/ping", timeout=300)

    def stop_scoring(self) -> None:
        assert self.scoring is not None
        self.scoring.stop()

    def kill_scoring(self) -> None:
        """SIGKILL the scoring server's whole process group, as a crash would, then reap it."""
        assert self.scoring is not None
        os.killpg(self.scoring.pid, signal.SIGKILL)
        self.scoring.stop()

    def start_facade(self, **env: str) -> None:
        """Start the facade; ``env`` adds or overrides its settings (e.g. MAX_IN_FLIGHT="4")."""
        self.facade = self.start_another_facade("facade", self.api_port, **env)

    def start_another_facade(self, name: str, port: int, **env: str) -> ManagedProcess:
        """A facade on ``port``; it follows the supervisor when one was started."""
        supervisor = {"SUPERVISOR_URL": self.supervisor_url} if self.supervisor is not None else {}
        facade = self._start(
            name,
            commands.facade(),
            **{
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "SCORING_URL": self.scoring_url,
                "MLFLOW_TRACKING_URI": self.tracking_uri,
                "MODEL_NAME": "credit-score",
                **supervisor,
                **env,
            },
        )
        facade.wait_http(f"http://127.0.0.1:{port}/api/v1/health/ready", timeout=60)
        return facade

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@contextmanager
def sqlite_tracking(root: Path) -> Iterator[Stack]:
    """A stack on a SQLite store in ``root`` with its tracking server started; what the caller
    starts besides is stopped with it (by process group) on exit."""
    stack = Stack(root, f"sqlite:///{root / 'mlflow.db'}")
    try:
        stack.start_tracking()
        yield stack
    finally:
        stack.stop()


@contextmanager
def sqlite_stack(root: Path, *train_params: str) -> Iterator[Stack]:
    """The whole stack on a SQLite store in ``root``: tracking server, a trained champion, serving,
    facade; stopped (by process group) on exit."""
    with sqlite_tracking(root) as stack:
        stack.train(*train_params)
        stack.start_scoring()
        stack.start_facade()
        yield stack


@dataclass
class Postgres:
    """A throwaway PostgreSQL 15 instance from Debian's own initdb, owned by the postgres user."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @staticmethod
    def available() -> bool:
        return (PG_BIN / "initdb").exists() and (os.geteuid() != 0 or shutil.which("runuser") is not None)

    def _as_owner(self, argv: list[str]) -> list[str]:
        # NB: initdb and postgres refuse to run as root; CI runs as root, so drop to `postgres`.
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    @classmethod
    def create(cls) -> Postgres:
        data_dir = Path(tempfile.mkdtemp(prefix="credit-score-pg-"))
        if os.geteuid() == 0:
            shutil.chown(data_dir, "postgres", "postgres")
        pg = cls(data_dir)
        subprocess.run(
            pg._as_owner([str(PG_BIN / "initdb"), "-D", str(data_dir / "data"), "-U", "postgres",
                          "--auth=trust", "--encoding=UTF8", "--no-sync"]),
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        return pg

    def start(self) -> None:
        self.process = ManagedProcess(
            "postgres",
            self._as_owner([str(PG_BIN / "postgres"), "-D", str(self.data_dir / "data"), "-p", str(self.port),
                            "-k", str(self.data_dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
            self.data_dir / "postgres.log",
            cwd=self.data_dir,
        ).start()  # fmt: skip
        self.process.wait_until(self._accepts, timeout=60, what="connections")

    def _accepts(self) -> bool:
        result = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
        )
        return result.returncode == 0

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        try:
            conn.autocommit = True  # NB: CREATE DATABASE cannot run inside a transaction
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        # NB: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; we ship psycopg2.
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def url(self, database: str, user: str = "postgres") -> str:
        """A plain postgresql:// URL (what DECISIONS_DATABASE_URL takes) of ``database`` as ``user``."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def halt(self) -> None:
        """Stop the server, as an outage would, keeping its data so that ``start`` brings it back.

        NB: SIGINT is PostgreSQL's fast shutdown, which disconnects clients; SIGTERM would wait for
        every pooled connection to close first.
        """
        if self.process is not None:
            self.process.interrupt()
            self.process.stop()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
