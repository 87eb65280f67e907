"""Command line of the containers flow: build the images, print the podman settings, clean up.

python -m scripts.containers images     # stand-in bases (if needed) and both Dockerfile targets
eval "$(python -m scripts.containers env)"   # this shell's podman/podman-compose use the same
python -m scripts.containers remove     # delete the state folder (images, layers, settings)
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys

import yaml

from scripts.containers.engine import Engine, default_state_dir, missing_requirements, say
from scripts.containers.images import build_images
from scripts.containers.standins import STANDINS, repository_of
from scripts.processes import PROJECT_ROOT

IMAGES = {"facade": "credit-score-api:0.1.0", "mlflow": "credit-score-mlflow:0.1.0"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.containers", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("images", "env", "remove"))
    parser.add_argument("--tag", default="0.1.0", help="IMAGE_TAG of docker-compose.yml (default 0.1.0)")
    args = parser.parse_args(argv)
    engine = Engine(default_state_dir())

    if args.command == "env":
        engine.prepare()
        for key in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF"):
            say(f"export {key}={shlex.quote(engine.env()[key])}")
        return 0
    if args.command == "remove":
        if engine.state_dir.exists():
            engine.prepare()
            if engine.podman("ps", "-aq").split():
                sys.stderr.write("containers still exist: `podman-compose down -v` first\n")
                return 1
            # NB: podman unmounts what it removes; `system reset` would also touch shared state.
            engine.run("podman", "rmi", "--all", "--force", check=False)
            shutil.rmtree(engine.state_dir)
        say(f"removed {engine.state_dir}")
        return 0

    reason = missing_requirements()
    if reason:
        sys.stderr.write(f"cannot build here: {reason}\n")
        return 1
    engine.prepare()
    targets = {target: image.replace(":0.1.0", f":{args.tag}") for target, image in IMAGES.items()}
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    upstream = [str(s["image"]) for s in services.values() if "build" not in s]
    upstream = [image for image in upstream if repository_of(image) in STANDINS]
    for built in build_images(engine, PROJECT_ROOT, targets, upstream):
        say(f"{built.image}: {built.size / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
