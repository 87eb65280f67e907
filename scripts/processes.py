"""Process plumbing shared by ``make run`` and the integration tests: start, wait, stop by group.

``mlflow server`` and ``mlflow models serve`` each fork a uvicorn child, so stopping only the pid
we started would orphan the server: every process is started in its own session and stopped by
signalling its whole process group, and only groups this module started are ever signalled.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# NB: one implementation of process-group plumbing, the serving supervisor's (it ships without scripts/).
from serving.servers import group_alive, signal_group
from serving.servers import group_members as group_members

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it, so parallel runs cannot collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when a server could bind ``host:port`` now (connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


@dataclass
class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path = PROJECT_ROOT
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            list(self.argv),
            cwd=self.cwd,
            env=dict(self.env) if self.env is not None else None,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``check`` until it holds; fail early, with the log's tail, if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if not self.running():
                raise RuntimeError(f"{self.name} exited before {what}:\n{self.log_tail()}")
            time.sleep(0.25)
        raise TimeoutError(f"{self.name}: no {what} after {timeout:.0f} s:\n{self.log_tail()}")

    def wait_http(self, url: str, timeout: float = 90.0, expect: int = 200) -> None:
        self.wait_until(lambda: http_status(url) == expect, timeout, f"HTTP {expect} from {url}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the whole group, SIGKILL what is left after ``grace`` seconds; return the exit code."""
        if self.process is None:
            return None
        pgid = self.process.pid  # NB: start_new_session makes the child its group's leader.
        signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (self.process.poll() is None or group_alive(pgid)):
            time.sleep(0.1)
        if self.process.poll() is None or group_alive(pgid):
            signal_group(pgid, signal.SIGKILL)
        code = self.process.wait(timeout=grace)
        if self._log is not None:
            self._log.close()
        return code

    def interrupt(self) -> None:
        """Send SIGINT to the group, as Ctrl-C in a terminal would."""
        signal_group(self.pid, signal.SIGINT)
