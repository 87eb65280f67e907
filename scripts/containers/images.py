"""The Dockerfile's two images, built with buildah on the stand-in bases: what Compose runs.

buildah rather than ``podman build`` (which podman-compose would call) for the flags this
machine kind needs; the images get the very names docker-compose.yml gives them, so
podman-compose finds them built and builds nothing itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from scripts.containers.engine import Engine, say
from scripts.containers.standins import BUILD_FLAGS, build_standin, remove_unused

# NB: pip inside a build must trust what the host trusts (this machine kind reaches PyPI through
# a proxy with its own CA). Mounted read-only over the image's own bundle for the build only: it
# never lands in a layer, and the path exists in the base, so no empty file is left behind.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class Built:
    target: str
    image: str
    seconds: float
    size: int


def dockerfile_bases(dockerfile: Path) -> list[str]:
    """The images the Dockerfile builds FROM that are not its own stages."""
    stages: set[str] = set()
    bases: list[str] = []
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"\s*FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, flags=re.IGNORECASE)
        if not match:
            continue
        if match.group(1) not in stages and match.group(1) not in bases:
            bases.append(match.group(1))
        if match.group(2):
            stages.add(match.group(2))
    return bases


def build_images(
    engine: Engine,
    context: Path,
    targets: dict[str, str],
    upstream: Iterable[str] = (),
    log: Callable[[str], None] = say,
) -> list[Built]:
    """Build each Dockerfile target of ``context`` as its image (``{"facade": "credit-score-api:0.1.0"}``).

    First the stand-ins of the Dockerfile's bases and of the ``upstream`` images (those Compose
    runs as they are), when they are not there yet.
    """
    dockerfile = context / "Dockerfile"
    for base in [*dockerfile_bases(dockerfile), *upstream]:
        build_standin(engine, base, log)
    built = []
    for target, image in targets.items():
        log(f"building {image} (Dockerfile target {target})")
        started = time.monotonic()
        engine.run(
            "buildah",
            "bud",
            *BUILD_FLAGS,
            "--volume",
            f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro",
            "--target",
            target,
            "--file",
            str(dockerfile),
            "--tag",
            image,
            str(context),
            timeout=3600,
        )
        seconds = time.monotonic() - started
        built.append(Built(target, image, seconds, engine.image_size(image)))
        log(f"built {image} in {seconds:.0f} s ({built[-1].size / 1e6:.0f} MB)")
    remove_unused(engine)
    return built
