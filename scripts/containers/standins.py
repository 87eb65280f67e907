"""Stand-ins for the upstream base images, made from Debian's packages when no registry is reachable.

Our CI machines reach Debian's mirror and PyPI but no container registry, so the images the
Dockerfile and docker-compose.yml name (python, postgres, prom/prometheus) are made locally and
tagged with those very names: the Dockerfile and the Compose file run unchanged. The Debian
root comes from ``mmdebstrap --variant=minbase`` with the machine's own apt sources (never a
hard-coded mirror); each stand-in is a Containerfile beside this module, built on it. Every
stand-in, and every image built on one, carries the label ``org.credit-score.stand-in-base``, so
that nobody mistakes it for the upstream image.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from scripts.containers.engine import Engine, digest_of, say

HERE = Path(__file__).resolve().parent
CONTAINERFILES = HERE / "standins"
APT_SOURCES = Path("/etc/apt")

SUITE = "bookworm"
BASE_REPOSITORY = "localhost/credit-score-standin/debian"
# NB: inherited by every image built on a stand-in, which is the point: `podman image inspect`
# of our own images says that their base was a local stand-in, not the upstream image.
STANDIN_LABEL = "org.credit-score.stand-in-base"
STANDINS_FILE = "standins.json"
# The image config of the imported root.
BASE_CHANGES = (
    'CMD ["bash"]',
    f'LABEL {STANDIN_LABEL}="built on a Debian {SUITE} minbase root made by mmdebstrap"',
)

# Like Debian's own -slim images: no documentation, manual pages or translations in the layers.
SLIM_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
    "/usr/share/linda/*",
)
SLIM_KEEP = ("/usr/share/doc/*/copyright",)
SLIM_HOOK = CONTAINERFILES / "debian-slim-hook.sh"


@dataclass(frozen=True)
class StandIn:
    """An upstream image name and the Containerfile that stands in for it."""

    image: str
    containerfile: str
    what: str


# By repository: the upstream images our Dockerfile and docker-compose.yml use that Debian can
# stand in for. Grafana has no Debian package: its service stays out of the containers test.
# A new service's image needs an entry here and a Containerfile in standins/.
STANDINS = {
    "docker.io/library/python": StandIn(
        "docker.io/library/python", "python.Containerfile", "Debian's python3.11 with a venv at /usr/local"
    ),
    "docker.io/library/postgres": StandIn(
        "docker.io/library/postgres", "postgres.Containerfile", "Debian's postgresql-15, non-root"
    ),
    "docker.io/prom/prometheus": StandIn(
        "docker.io/prom/prometheus", "prometheus.Containerfile", "Debian's package's prometheus, non-root"
    ),
    "docker.io/library/redis": StandIn(
        "docker.io/library/redis", "redis.Containerfile", "Debian's redis-server 7.0, non-root"
    ),
}


def qualified(image: str) -> str:
    """Docker's normalisation: ``postgres:15`` is ``docker.io/library/postgres:15``."""
    first, _, rest = image.partition("/")
    if not rest:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def repository_of(image: str) -> str:
    name = qualified(image).split("@", 1)[0]
    head, _, tag = name.rpartition(":")
    return head if head and "/" not in tag else name


# --- the machine's apt sources ----------------------------------------------------------------------


def _deb822_stanzas(text: str) -> Iterable[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields:
            yield fields


def _one_line_entries(text: str) -> Iterable[dict[str, str]]:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        options = ""
        rest = line[4:].strip()
        if rest.startswith("["):
            options, _, rest = rest[1:].partition("]")
        parts = rest.split()
        if len(parts) < 3:
            continue
        entry = {"types": "deb", "uris": parts[0], "suites": parts[1], "components": " ".join(parts[2:])}
        signed = re.search(r"signed-by=(\S+)", options)
        if signed:
            entry["signed-by"] = signed.group(1)
        yield entry


def debian_sources(apt_dir: Path = APT_SOURCES, suite: str = SUITE) -> str:
    """The machine's own Debian sources for ``suite`` (and its -updates, -security), as deb822.

    NB: read from the machine's apt configuration, so the stand-ins come from the same mirror
    (or snapshot) its packages came from; entries for other suites or other vendors are left out.
    """
    entries: list[dict[str, str]] = []
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            entries += _one_line_entries(path.read_text())
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        entries += [e for e in _deb822_stanzas(path.read_text()) if e.get("enabled", "yes") != "no"]
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    stanzas = []
    for entry in entries:
        suites = [s for s in entry.get("suites", "").split() if s in wanted]
        components = entry.get("components", "").split()
        if "deb" not in entry.get("types", "").split() or not suites or "main" not in components:
            continue
        stanza = [
            "Types: deb",
            f"URIs: {entry['uris']}",
            f"Suites: {' '.join(suites)}",
            "Components: main",
        ]
        if entry.get("signed-by"):
            stanza.append(f"Signed-By: {entry['signed-by']}")
        stanzas.append("\n".join(stanza))
    if not any(suite in s.split("Suites: ", 1)[1].split("\n", 1)[0].split() for s in stanzas):
        raise RuntimeError(f"no Debian '{suite}' source in {apt_dir}/sources.list(.d) for the stand-ins")
    return "\n\n".join(stanzas) + "\n"


# --- building -----------------------------------------------------------------------------------------


def _week() -> str:
    # NB: part of the base's key, so the stand-ins pick up Debian's security updates weekly.
    year, week, _ = datetime.date.today().isocalendar()
    return f"{year}-W{week:02d}"


def mmdebstrap_argv(rootfs: Path) -> list[str]:
    """The minbase root of bookworm, slim like Debian's own -slim images, with ca-certificates."""
    return [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--format=tar",
        "--include=ca-certificates",
        # NB: merged /usr by mmdebstrap's own hook: the usrmerge package would bring the whole of
        # perl (about 50 MB) into every image.
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        *(f"--dpkgopt=path-exclude={pattern}" for pattern in SLIM_EXCLUDES),
        *(f"--dpkgopt=path-include={pattern}" for pattern in SLIM_KEEP),
        # Debian's container apt settings (no cached packages, no translations); the apt lists
        # stay out of the layer too: every Containerfile runs `apt-get update`.
        f"--customize-hook={SLIM_HOOK}",
        SUITE,
        str(rootfs),
        "-",  # the sources, on standard input
    ]


def base_key() -> str:
    """What the base is made from: the sources, mmdebstrap's arguments, the hook, the week."""
    return digest_of(
        debian_sources(), *mmdebstrap_argv(Path("rootfs.tar")), SLIM_HOOK.read_bytes(), *BASE_CHANGES, _week()
    )


def base_image(engine: Engine, log: Callable[[str], None] = say) -> str:
    """The Debian base of every stand-in as an image, made once per week, sources and settings."""
    sources = debian_sources()
    tag = f"{BASE_REPOSITORY}:{SUITE}-{base_key()}"
    if engine.image_exists(tag):
        return tag
    log(f"making the Debian {SUITE} base with mmdebstrap ({tag})")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="standin-base-", dir=engine.state_dir) as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        result = subprocess.run(
            mmdebstrap_argv(rootfs), input=sources, capture_output=True, text=True, timeout=1800
        )
        if result.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed ({result.returncode}):\n{result.stderr[-4000:]}")
        engine.podman("import", *(f"--change={change}" for change in BASE_CHANGES), str(rootfs), tag)
    log(f"made {tag} in {time.monotonic() - started:.0f} s")
    return tag


def remove_unused(engine: Engine) -> None:
    """Earlier generations: layers no tag uses, older than a week and a day, then older bases.

    The base, and so every layer built on it, is remade weekly: what is older is no longer a
    cache of anything. podman refuses to remove a base that an image still builds on.
    """
    engine.run("podman", "image", "prune", "--force", "--filter", "until=192h", check=False)
    current = f"{BASE_REPOSITORY}:{SUITE}-{base_key()}"
    for old in engine.podman("images", "--format", "{{.Repository}}:{{.Tag}}", BASE_REPOSITORY).split():
        if old != current:
            engine.run("podman", "rmi", old, check=False)


def build_standin(engine: Engine, image: str, log: Callable[[str], None] = say) -> str:
    """Tag a stand-in for ``image`` (e.g. ``postgres:15.18-bookworm``), unless it is there already.

    The version in the tag is the upstream one the files name; the stand-in holds Debian's version
    of the same program (its label says so), e.g. PostgreSQL 15 and Prometheus 2.
    """
    name = qualified(image)
    standin = STANDINS.get(repository_of(image))
    if standin is None:
        raise LookupError(f"no stand-in for {image}: it has no Debian package (Grafana) or is unknown")
    base = base_image(engine, log)
    containerfile = CONTAINERFILES / standin.containerfile
    stem = containerfile.name.split(".")[0]
    files = sorted(p for p in CONTAINERFILES.iterdir() if p.name.startswith(stem))
    key = digest_of(base, *(p.read_bytes() for p in files))
    # NB: what each stand-in was built from is kept in the state folder, not in a label: labels
    # are inherited by every image built on a stand-in (ours included).
    built = _built_standins(engine)
    previous = engine.image_id(name) if engine.image_exists(name) else None
    if previous is not None and built.get(name) == {"key": key, "id": previous}:
        return name
    log(f"building the stand-in {name} ({standin.what})")
    started = time.monotonic()
    engine.run(
        "buildah",
        "bud",
        *BUILD_FLAGS,
        "--build-arg",
        f"BASE={base}",
        "--label",
        f"{STANDIN_LABEL}=built on a local stand-in for {name}: {standin.what}",
        "-f",
        str(containerfile),
        "-t",
        name,
        str(CONTAINERFILES),
        timeout=1800,
    )
    current = engine.image_id(name)
    if previous is not None and previous != current:
        # The stand-in this one replaces; podman refuses while an image still builds on it.
        engine.run("podman", "rmi", previous, check=False)
    built[name] = {"key": key, "id": current}
    (engine.state_dir / STANDINS_FILE).write_text(json.dumps(built, indent=1, sort_keys=True) + "\n")
    log(f"built {name} in {time.monotonic() - started:.0f} s")
    return name


def _built_standins(engine: Engine) -> dict[str, dict[str, str]]:
    path = engine.state_dir / STANDINS_FILE
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): dict(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


# NB: chroot isolation and the host's network: no user namespaces or container networks in a
# build here; `--format docker` keeps HEALTHCHECK (OCI image configs have no such field);
# `--pull-never`: no registry is reachable, and a build must never fetch a base behind our back;
# `--force-rm`: a failed build leaves no working container in the storage.
BUILD_FLAGS = (
    "--isolation", "chroot", "--network", "host",
    "--layers", "--force-rm", "--pull-never", "--format", "docker",
)  # fmt: skip
