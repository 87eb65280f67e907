"""The README's Compose commands run by podman-compose, on the flow's own podman, and waited on.

podman 4.3 schedules health checks through systemd only (PID 1 is not systemd here) and
podman-compose ignores ``condition: service_healthy`` on it, so between the README's steps
``wait_healthy`` runs each container's HEALTHCHECK with ``podman healthcheck run`` until it passes.
Containers, volumes and networks are found by podman-compose's project label, never by name
patterns, so services added to docker-compose.yml are covered without a change here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.containers.engine import Engine, say

PROJECT_LABEL = "io.podman.compose.project"
SERVICE_LABEL = "io.podman.compose.service"


def podman_compose_binary() -> str | None:
    """podman-compose from PATH, else from this interpreter's environment (the project's venv)."""
    found = shutil.which("podman-compose")
    if found:
        return found
    beside = Path(sys.executable).parent / "podman-compose"
    return str(beside) if beside.exists() else None


def readme_compose_commands(readme: Path) -> list[str]:
    """The shell lines of the README's Docker Compose quick start, comments dropped."""
    text = readme.read_text()
    section = text.split("\n## Docker Compose", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    if block is None:
        raise LookupError("the README's Docker Compose section has no bash block")
    lines = [re.split(r"\s+#", line, maxsplit=1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def copy_project(source: Path, destination: Path) -> Path:
    """The files a user's checkout has (git's, when it is a checkout), without local state."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=source, capture_output=True, check=True, timeout=60,
        ).stdout.decode().split("\0")  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        listed = []
    if listed and any(listed):
        for name in filter(None, listed):
            origin = source / name
            if origin.is_file():
                target = destination / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    else:
        ignore = shutil.ignore_patterns(
            ".git", ".venv", ".run", "mlruns", "__pycache__", ".*_cache", "data", "secrets", ".env",
            "*.egg-info", "bench-results",
        )  # fmt: skip
        shutil.copytree(source, destination, ignore=ignore, dirs_exist_ok=True)
    return destination


def set_env_values(env_file: Path, values: dict[str, str]) -> None:
    """Change (or add) ``KEY=value`` lines of a Compose .env file, as a user edits it."""
    lines = env_file.read_text().splitlines()
    pending = dict(values)
    for index, line in enumerate(lines):
        key = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and key in pending:
            lines[index] = f"{key}={pending.pop(key)}"
    lines += [f"{key}={value}" for key, value in pending.items()]
    env_file.write_text("\n".join(lines) + "\n")


def published_port_variables(compose_file: Path) -> dict[str, int]:
    """``{"API_PORT": 8000, ...}``: each host-port variable of the file and its default."""
    found = re.findall(r"\$\{([A-Z][A-Z0-9_]*_PORT):-(\d+)\}:\d+", compose_file.read_text())
    return {name: int(default) for name, default in found}


@dataclass
class ComposeProject:
    """A copy of the project, run as one Compose project on ``engine``."""

    engine: Engine
    directory: Path
    name: str
    log: Callable[[str], None] = say

    def env(self) -> dict[str, str]:
        # NB: none of the stack's variables from this process: the project's .env decides.
        names: set[str] = set()
        for env_file in (self.directory / ".env", self.directory / ".env.example"):
            if env_file.exists():
                names |= set(re.findall(r"^([A-Z][A-Z0-9_]*)=", env_file.read_text(), flags=re.M))
        base = {key: value for key, value in os.environ.items() if key not in names}
        return self.engine.env(base)

    def compose(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        """``podman-compose <args>`` in the project folder; its output is kept for the reader."""
        binary = podman_compose_binary()
        if binary is None:
            raise FileNotFoundError("podman-compose is not installed")
        self.log(f"$ podman-compose {shlex.join(args)}")
        return subprocess.run(
            [binary, *args],
            cwd=self.directory,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def shell(self, line: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A README line that is not a Compose command (cp, mkdir, openssl...), run by bash."""
        self.log(f"$ {line}")
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", line],
            cwd=self.directory, env=self.env(), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    # --- what is running ------------------------------------------------------------------------

    def containers(self) -> list[dict[str, Any]]:
        """Every container of the project (running or not), as ``podman ps --format json`` has it."""
        label = f"label={PROJECT_LABEL}={self.name}"
        listed = self.engine.podman_json("ps", "-a", "--filter", label, "--format", "json")
        return list(listed or [])

    def inspect(self, container: str) -> dict[str, Any]:
        (info,) = self.engine.podman_json("container", "inspect", container)
        return dict(info)

    @staticmethod
    def service_of(container: dict[str, Any]) -> str:
        return str((container.get("Labels") or {}).get(SERVICE_LABEL, ""))

    @staticmethod
    def name_of(container: dict[str, Any]) -> str:
        names = container.get("Names") or [""]
        return str(names[0] if isinstance(names, list) else names)

    def has_healthcheck(self, container: str) -> bool:
        config = self.inspect(container).get("Config") or {}
        test = (config.get("Healthcheck") or {}).get("Test") or []
        return bool(test) and test[0] != "NONE"

    def health(self, container: str) -> str:
        state = self.inspect(container).get("State") or {}
        health = state.get("Health") or state.get("Healthcheck") or {}
        return str(health.get("Status", ""))

    def healthcheck_run(self, container: str) -> bool:
        """One run of the container's HEALTHCHECK (podman records its status): True when it passed."""
        result = self.engine.run("podman", "healthcheck", "run", container, check=False, timeout=60)
        return result.returncode == 0

    def wait_healthy(self, timeout: float = 600) -> float:
        """Run each running container's health check until every one passes; the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        pending = {self.name_of(c) for c in self.containers() if c.get("State") == "running"}
        pending = {name for name in pending if self.has_healthcheck(name)}
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                if self.healthcheck_run(name):
                    pending.discard(name)
            if pending:
                time.sleep(3)
        if pending:
            tails = "\n".join(f"--- {name}\n{self.logs(name)}" for name in sorted(pending))
            raise TimeoutError(f"not healthy after {timeout:.0f} s: {sorted(pending)}\n{tails}")
        return time.monotonic() - started

    def logs(self, container: str, lines: int = 40) -> str:
        result = self.engine.run("podman", "logs", "--tail", str(lines), container, check=False)
        return (result.stdout + result.stderr)[-6000:]

    def processes(self, container: str) -> list[dict[str, str]]:
        """The container's processes: user inside, user on the host, command (``podman top``)."""
        out = self.engine.podman("top", container, "user", "huser", "args")
        rows = []
        for line in out.splitlines()[1:]:
            parts = line.split(None, 2)
            if len(parts) >= 2:
                rows.append({"user": parts[0], "huser": parts[1], "args": parts[2] if len(parts) > 2 else ""})
        return rows

    def image_user(self, image: str) -> str:
        (info,) = self.engine.podman_json("image", "inspect", image)
        return str((info.get("Config") or {}).get("User") or "")

    # --- what is left ---------------------------------------------------------------------------

    def leftovers(self) -> dict[str, list[str]]:
        """The project's containers, pods, volumes and networks that still exist."""
        label = f"label={PROJECT_LABEL}={self.name}"
        found = {
            "containers": self.engine.podman("ps", "-a", "--filter", label, "--format", "{{.Names}}").split(),
            "pods": self.engine.podman("pod", "ps", "--filter", label, "--format", "{{.Name}}").split(),
            "volumes": self.engine.podman("volume", "ls", "--filter", label, "--format", "{{.Name}}").split(),
            "networks": [
                n["name"]
                for n in self.engine.podman_json("network", "ls", "--format", "json") or []
                if (n.get("labels") or {}).get(PROJECT_LABEL) == self.name
            ],
        }
        # NB: also by name, in case a label went missing: podman-compose prefixes the project name.
        for kind, command in (("volumes", ["volume", "ls"]), ("pods", ["pod", "ps"])):
            fmt = "{{.Name}}"
            names = self.engine.podman(*command, "--format", fmt).split()
            found[kind] = sorted(set(found[kind]) | {n for n in names if self.name in n})
        return {kind: names for kind, names in found.items() if names}

    def force_remove(self) -> None:
        """Last resort after a failed run: remove what the project label names, nothing else."""
        label = f"label={PROJECT_LABEL}={self.name}"
        ids = self.engine.podman("ps", "-aq", "--filter", label, check=False).split()
        if ids:
            self.engine.run("podman", "rm", "--force", "--time", "5", *ids, check=False)
        left = self.leftovers()
        for pod in left.get("pods", []):
            self.engine.run("podman", "pod", "rm", "--force", pod, check=False)
        for volume in left.get("volumes", []):
            self.engine.run("podman", "volume", "rm", "--force", volume, check=False)
        for network in left.get("networks", []):
            self.engine.run("podman", "network", "rm", "--force", network, check=False)
