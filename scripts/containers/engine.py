"""A podman and buildah of the stack's own: settings, storage and networks in one state folder.

Every podman, buildah and podman-compose call of the containers flow goes through ``Engine.env``,
so nothing is read from or written to the machine's own container storage (/var/lib/containers),
its CNI networks (/etc/cni/net.d) or its registries configuration, and a second run finds the
layers and stand-in base images the first one left (the state folder is the cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What the flow drives. buildah builds, podman runs, mmdebstrap makes the stand-ins' Debian base.
REQUIRED_BINARIES = ("podman", "buildah", "mmdebstrap", "runc")
# The Compose network's service names: netavark with aardvark-dns (CNI without the dnsname
# plugin leaves `postgres` and `mlflow` unresolvable).
NETWORK_HELPERS = ("netavark", "aardvark-dns")
HELPER_DIRS = (Path("/usr/lib/podman"), Path("/usr/libexec/podman"), Path("/usr/local/libexec/podman"))

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def say(message: str) -> None:
    """Progress of the flow on stdout (builds take minutes; a silent one looks hung)."""
    print(message, flush=True)  # noqa: T201 - progress of a console program


def default_state_dir() -> Path:
    """$CREDIT_SCORE_CONTAINERS_DIR, else ${XDG_CACHE_HOME:-~/.cache}/credit-score-mlflow-api/containers.

    NB: outside the clone, so that a fresh clone (CI's) finds the images and layers of the last run.
    """
    explicit = os.environ.get("CREDIT_SCORE_CONTAINERS_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser().resolve() / "credit-score-mlflow-api" / "containers"


def missing_requirements() -> str | None:
    """Why the flow cannot run on this machine, or None when it can."""
    missing = [name for name in REQUIRED_BINARIES if shutil.which(name) is None]
    # NB: podman's helpers live outside PATH (Debian: /usr/lib/podman, upstream: /usr/libexec/podman).
    missing += [name for name in NETWORK_HELPERS if not any((d / name).exists() for d in HELPER_DIRS)]
    if missing:
        return (
            f"{', '.join(missing)} not installed (Debian: apt-get install podman buildah runc mmdebstrap "
            "netavark aardvark-dns)"
        )
    if os.geteuid() != 0:
        # NB: rootless podman needs subuid ranges and user namespaces this sandbox does not grant.
        return "podman and buildah run as root only on this machine kind"
    return None


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


@dataclass(frozen=True)
class Engine:
    """Paths and environment of the flow's podman; ``prepare()`` writes its configuration."""

    state_dir: Path

    @property
    def storage(self) -> Path:
        return self.state_dir / "storage"

    @property
    def run_dir(self) -> Path:
        # NB: per-boot state (podman's tmp_dir, the runroot): /run is not a tmpfs on this machine
        # kind, so `prepare` empties it after a reboot instead.
        return self.state_dir / "run"

    @property
    def networks(self) -> Path:
        return self.state_dir / "networks"

    @property
    def conf_dir(self) -> Path:
        return self.state_dir / "conf"

    def prepare(self) -> Engine:
        for path in (self.storage, self.run_dir, self.networks, self.conf_dir):
            path.mkdir(parents=True, exist_ok=True)
        self._forget_previous_boot()
        self._write(
            "containers.conf",
            f"""\
# Written by scripts/containers/engine.py: the settings podman needs on this machine kind.
[containers]
# The sandbox cannot raise rlimits: without these, runc fails with
# `setrlimit RLIMIT_NOFILE: Operation not permitted`.
default_ulimits = {_toml_list(["nofile=20000:20000", "nproc=32768:32768"])}

[engine]
# crun refuses this machine's hybrid cgroup layout; PID 1 is not systemd.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{self.run_dir / "events.log"}"
tmp_dir = "{self.run_dir / "libpod"}"
# File locks in this folder rather than a shared-memory segment every root podman shares.
lock_type = "file"
pull_policy = "missing"

[network]
network_backend = "netavark"
network_config_dir = "{self.networks}"
""",
        )
        self._write(
            "storage.conf",
            f"""\
# Written by scripts/containers/engine.py: layers and images in the state folder only.
[storage]
driver = "overlay"
graphroot = "{self.storage}"
runroot = "{self.run_dir / "storage"}"
""",
        )
        self._write(
            "registries.conf",
            """\
# Written by scripts/containers/engine.py. No registry is reachable on our CI machines: short
# names (postgres:15.18-bookworm) resolve to docker.io, where the stand-ins are tagged locally.
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
""",
        )
        return self

    def _write(self, name: str, text: str) -> None:
        path = self.conf_dir / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)

    def _forget_previous_boot(self) -> None:
        """Empty the per-boot folder when the machine has rebooted since it was written."""
        marker = self.run_dir / "boot_id"
        boot = BOOT_ID.read_text().strip() if BOOT_ID.exists() else ""
        if marker.exists() and marker.read_text().strip() != boot:
            shutil.rmtree(self.run_dir)
            self.run_dir.mkdir(parents=True)
        marker.write_text(boot + "\n")

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) pointed at this engine's configuration."""
        env = dict(os.environ if base is None else base)
        env.update(
            CONTAINERS_CONF=str(self.conf_dir / "containers.conf"),
            CONTAINERS_STORAGE_CONF=str(self.conf_dir / "storage.conf"),
            CONTAINERS_REGISTRIES_CONF=str(self.conf_dir / "registries.conf"),
        )
        return env

    def run(
        self, tool: str, *args: str, check: bool = True, timeout: float = 600, capture: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman``/``buildah`` with this engine's settings; on failure raise with its output."""
        argv = [tool, *args]
        result = subprocess.run(
            argv,
            env=self.env(),
            capture_output=capture,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            output = (result.stdout or "")[-4000:] + (result.stderr or "")[-4000:]
            raise RuntimeError(f"{' '.join(argv[:4])} ... failed ({result.returncode}):\n{output}")
        return result

    def podman(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        return self.run("podman", *args, check=check, timeout=timeout).stdout

    def podman_json(self, *args: str) -> Any:
        return json.loads(self.podman(*args) or "null")

    def image_exists(self, name: str) -> bool:
        return self.run("podman", "image", "exists", name, check=False).returncode == 0

    def image_id(self, name: str) -> str:
        return self.podman("image", "inspect", "--format", "{{.Id}}", name).strip()

    def image_size(self, name: str) -> int:
        (info,) = self.podman_json("image", "inspect", name)
        return int(info["Size"])


def digest_of(*parts: str | bytes) -> str:
    """A short, stable key of inputs (files' contents, settings) for cache tags."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()[:12]
