"""The peers' virtual environments: made by ``make bench`` on first use, cached outside the clone.

Each peer gets its own venv with its server at the version pinned in pyproject.toml's
``[tool.credit-score-bench.peers]`` plus the model's runtime pins (scikit-learn, skops, pandas,
numpy, scipy from the ``model`` extra), so every peer unpickles nothing and scores with the same
libraries as the pyfunc. A venv lives under ``$XDG_CACHE_HOME/credit-score-mlflow-api/bench-peers``
(``~/.cache/...`` by default) in a folder named by a hash of those pins and the Python version:
a rerun reuses it, a change of pins makes a new one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts.processes import PROJECT_ROOT

# The model extra's libraries a peer needs to load and run the skops pipeline (not mlflow).
MODEL_RUNTIME = ("scikit-learn", "skops", "pandas", "numpy", "scipy")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
COMPLETE = ".bench-complete"


class PeerUnavailable(RuntimeError):
    """A peer's environment could not be made (no network, a resolver conflict...)."""


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "credit-score-mlflow-api" / "bench-peers"


def _pyproject() -> dict[str, object]:
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def model_runtime_pins() -> list[str]:
    """The ``model`` extra's pins of the libraries in MODEL_RUNTIME."""
    extras = _pyproject()["project"]["optional-dependencies"]  # type: ignore[index]
    pins = [p for p in extras["model"] if _requirement_name(p) in MODEL_RUNTIME]
    missing = set(MODEL_RUNTIME) - {_requirement_name(p) for p in pins}
    if missing:
        raise ValueError(f"pyproject.toml's model extra pins none of {sorted(missing)}")
    return pins


def peer_pins(kind: str) -> list[str]:
    """The server pins of peer environment ``kind`` (``bentoml`` or ``mlserver``)."""
    tool = _pyproject()["tool"]["credit-score-bench"]["peers"]  # type: ignore[index]
    return list(tool[kind])


def pinned_version(kind: str) -> str:
    """The version pinned for the package named ``kind`` (for the report's labels)."""
    for pin in peer_pins(kind):
        if _requirement_name(pin) == kind and "==" in pin:
            return pin.split("==", 1)[1].strip()
    return "?"


def _requirement_name(pin: str) -> str:
    match = _NAME.match(pin)
    return match.group(1).lower().replace("_", "-") if match else pin


@dataclass(frozen=True)
class PeerEnv:
    kind: str
    path: Path
    requirements: tuple[str, ...]

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)


def requirements(kind: str) -> tuple[str, ...]:
    return (*peer_pins(kind), *model_runtime_pins())


def env_path(kind: str, cache: Path) -> Path:
    reqs = requirements(kind)
    key = json.dumps([sys.version_info[:3], platform.machine(), sorted(reqs)]).encode()
    return cache / f"{kind}-{hashlib.sha256(key).hexdigest()[:12]}"


def ensure(kind: str, cache: Path, log: Path) -> PeerEnv:
    """The venv of peer ``kind``, made now if the cache has no complete one (pip's output → ``log``)."""
    reqs = requirements(kind)
    path = env_path(kind, cache)
    env = PeerEnv(kind, path, reqs)
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(path.name + ".lock")):
        if (path / COMPLETE).exists():
            return env
        # NB: a venv is not relocatable (its scripts name their interpreter by absolute path), so
        # it is made in place; only the marker written last makes it count as complete.
        shutil.rmtree(path, ignore_errors=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            for argv in (
                [sys.executable, "-m", "venv", str(path)],
                [env.bin("python"), "-m", "pip", "install", "--disable-pip-version-check", *reqs],
            ):
                if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
                    raise PeerUnavailable(f"{kind}: `{' '.join(argv[:5])} ...` failed; see {log}")
        (path / COMPLETE).write_text("\n".join(reqs) + "\n")
    return env


@contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """One builder per venv at a time (two benchmarks may start together)."""
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
