"""One `mlflow models serve` of one fixed registered version: started on a free port, stopped by group.

``mlflow models serve`` downloads the model, then runs uvicorn through ``bash -c "exec uvicorn ..."``
as its child; both stay in the process group the supervisor gives the server, so stopping signals
the group: SIGTERM first (uvicorn finishes the requests in flight, then exits), SIGKILL for what
is left after the grace period. Only groups started here are ever signalled.

With several workers (``SCORING_WORKERS`` > 1) the supervisor binds each server's listening
socket itself, with TCP_NODELAY, and hands it to uvicorn as its stdin (``UVICORN_FD=0``; `mlflow
models serve` passes its stdin on, and closes every other descriptor): uvicorn's own socket for
several workers is one asyncio never sets TCP_NODELAY on, and Nagle's algorithm with the client's
delayed ACK adds about 40 ms to every keep-alive request. Linux gives accepted connections the
listener's TCP_NODELAY. With one worker uvicorn binds its own socket, which asyncio gives
TCP_NODELAY and which uvicorn closes at SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import httpx

from model_code.rollout import Backend
from serving.registry import Version

logger = logging.getLogger(__name__)

PING = "/ping"
# NB: within the 10 s a container (and `make run`'s launcher) gives the supervisor to stop.
STOP_GRACE_SECONDS = 8.0
PR_SET_PDEATHSIG = 1


LISTEN_BACKLOG = 2048  # NB: uvicorn's own default


def serve_command(model_uri: str, host: str, port: int, workers: int = 1) -> list[str]:
    """`mlflow models serve` of ``model_uri`` in this interpreter's environment, with ``workers`` workers."""
    # NB: `python -m mlflow`, not a console script on PATH: the same interpreter, venv or image.
    # -h and -p only name the address: uvicorn listens on the socket UVICORN_FD gives it.
    return [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
        "--env-manager", "local", "-h", host, "-p", str(port), "-w", str(workers),
    ]  # fmt: skip


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host``:``port`` whose accepted connections have TCP_NODELAY."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def free_port(host: str) -> int:
    """A port nobody listens on now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ScoringServer:
    """A scoring server of ``version`` of ``model_name`` on ``port``, in a process group of its own."""

    def __init__(
        self,
        model_name: str,
        version: Version,
        *,
        bind_host: str,
        local_host: str,
        advertise_host: str,
        port: int,
        env: Mapping[str, str],
        workers: int = 1,
    ) -> None:
        self.version = version
        self.model_uri = f"models:/{model_name}/{version.version}"
        self.bind_host, self.local_host, self.advertise_host = bind_host, local_host, advertise_host
        self.port = port
        self.workers = workers
        # NB: `mlflow models serve` runs `exec uvicorn` through bash, found on PATH: this
        # interpreter's scripts come first, so that the venv's (or the image's) uvicorn is the one.
        self._env = {**env, "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])}
        if workers > 1:
            # NB: only for several workers: with one, uvicorn's own socket gets TCP_NODELAY from
            # asyncio and is closed at SIGTERM, so new connections are refused at once while the
            # server drains (a handed-over fd 0 stays open until the processes exit).
            self._env["UVICORN_FD"] = "0"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at: datetime | None = None
        self._started: float | None = None

    @property
    def url(self) -> str:
        """Where facades call it."""
        return f"http://{self.advertise_host}:{self.port}"

    @property
    def local_url(self) -> str:
        """Where the supervisor itself calls it (the gate, the forwarder)."""
        return f"http://{self.local_host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server was never started"
        return self.process.pid

    def describe(self) -> Backend:
        assert self.started_at is not None
        return Backend(
            version=self.version.version,
            run_id=self.version.run_id,
            url=self.url,
            pid=self.pid,
            since=self.started_at,
        )

    def start(self) -> ScoringServer:
        # NB: its output goes to the supervisor's (the container's log, `make run`'s log file). The
        # listener is the child's from here on: ours closes, so the port goes with the server's group.
        with contextlib.ExitStack() as ours:
            stdin = (
                subprocess.DEVNULL
                if self.workers == 1
                else ours.enter_context(listen(self.bind_host, self.port)).fileno()
            )
            self.process = subprocess.Popen(
                serve_command(self.model_uri, self.bind_host, self.port, self.workers),
                env=self._env,
                stdin=stdin,
                start_new_session=True,
                preexec_fn=_terminate_with_parent,
            )
        self.started_at = datetime.now(UTC)
        self._started = time.monotonic()
        logger.info(
            "started the scoring server of version %s on port %d (pid %d, %d worker(s))",
            self.version.version,
            self.port,
            self.pid,
            self.workers,
        )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def seconds_since_start(self) -> float:
        return time.monotonic() - self._started if self._started is not None else 0.0

    async def wait_ready(self, within: float) -> str | None:
        """Wait for ``/ping`` to answer 200; None when it does, else why it never will."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.local_url, timeout=2.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                if not self.running():
                    code = self.process.returncode if self.process is not None else None
                    return f"its server exited with code {code} before answering /ping (the log says why)"
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(PING)).status_code == 200:
                        return None
                await asyncio.sleep(0.25)
        return f"its server did not answer /ping within {within:.0f} s"

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM the group (requests in flight finish), SIGKILL what is left after ``grace`` seconds."""
        if self.process is None:
            return
        pgid = self.process.pid  # NB: start_new_session made it its group's leader
        signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        # NB: polled: no event tells when the last member of a process group is gone.
        while time.monotonic() < deadline and (self.running() or group_alive(pgid)):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if self.running() or group_alive(pgid):
            logger.warning(
                "the server of version %s ignored SIGTERM for %.0f s: SIGKILL", self.version.version, grace
            )
            signal_group(pgid, signal.SIGKILL)
        # NB: polled, never Popen.wait: that would block the event loop (every alias, the forwarder
        # and the state port) for as long as a process takes to be reaped.
        deadline = time.monotonic() + grace
        while self.process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        logger.info("stopped the scoring server of version %s (pid %d)", self.version.version, pgid)


def _terminate_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the supervisor dies, even by SIGKILL.

    NB: `mlflow models serve` does the same for its uvicorn child, so a supervisor killed outright
    leaves no scoring server behind (a graceful stop signals the whole group anyway).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid``, if anything is left in it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """True while a live (not zombie) process remains in group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # NB: zombies of an exited group still count for killpg(0); look for a live member instead.
    return any(_live_member(entry, pgid) for entry in os.listdir("/proc") if entry.isdigit())


def group_members(pgid: int) -> list[int]:
    """Live processes in group ``pgid`` (the tests use it to prove nothing was left behind)."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _live_member(entry, pgid)]


def _live_member(pid: str, pgid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # Fields after the parenthesised command: state is the 1st, pgrp the 3rd.
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and int(fields[2]) == pgid


def reap_orphans(children: Mapping[int, subprocess.Popen[bytes]]) -> None:
    """Reap exited processes that are not our own children's Popen objects.

    NB: as a container's PID 1 the supervisor inherits the uvicorn processes whose `mlflow models
    serve` parent exited first; nobody else would reap them, and they would stay zombies. Our own
    children are left to their Popen (which reads their exit code).
    """
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            return
        if (own := children.get(info.si_pid)) is not None:
            own.poll()
            if own.returncode is None:
                return
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.si_pid, 0)
