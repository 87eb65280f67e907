"""The containers flow's own logic (scripts/containers), without podman: sources, names, README steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.containers.compose import published_port_variables, readme_compose_commands, set_env_values
from scripts.containers.engine import Engine
from scripts.containers.images import dockerfile_bases
from scripts.containers.standins import STANDINS, debian_sources, qualified, repository_of

ROOT = Path(__file__).resolve().parents[2]


def _apt_dir(tmp_path: Path, sources: dict[str, str], one_line: str = "") -> Path:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(one_line)
    for name, text in sources.items():
        (tmp_path / "sources.list.d" / name).write_text(text)
    return tmp_path


def test_debian_sources_keep_only_the_suites_of_bookworm_from_the_machine(tmp_path: Path) -> None:
    apt = _apt_dir(
        tmp_path,
        {
            "debian.sources": (
                "Types: deb\nURIs: http://mirror.internal/debian\nSuites: bookworm bookworm-updates\n"
                "Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
                "Types: deb\nURIs: http://mirror.internal/debian-security\nSuites: bookworm-security\n"
                "Components: main\n"
            ),
            "other.sources": "Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\n"
            "Components: main\n",
            "off.sources": "Enabled: no\nTypes: deb\nURIs: http://old.internal/debian\nSuites: bookworm\n"
            "Components: main\n",
            "node.sources.disabled": "Types: deb\nURIs: https://x.example\nSuites: bookworm\n"
            "Components: main\n",
        },
        one_line="deb [signed-by=/k.gpg] http://one.internal/debian trixie main\n",
    )

    text = debian_sources(apt)

    assert text == (
        "Types: deb\nURIs: http://mirror.internal/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://mirror.internal/debian-security\nSuites: bookworm-security\n"
        "Components: main\n"
    )


def test_debian_sources_read_one_line_entries_too(tmp_path: Path) -> None:
    apt = _apt_dir(
        tmp_path,
        {},
        one_line="# a comment\ndeb [signed-by=/k.gpg] http://one.internal/debian bookworm main\n",
    )

    assert debian_sources(apt) == (
        "Types: deb\nURIs: http://one.internal/debian\nSuites: bookworm\nComponents: main\n"
        "Signed-By: /k.gpg\n"
    )


def test_no_bookworm_source_is_a_clear_error(tmp_path: Path) -> None:
    apt = _apt_dir(
        tmp_path, {"debian.sources": "Types: deb\nURIs: http://m/debian\nSuites: trixie\nComponents: main\n"}
    )

    with pytest.raises(RuntimeError, match="no Debian 'bookworm' source"):
        debian_sources(apt)


@pytest.mark.parametrize(
    ("image", "name", "repository"),
    [
        (
            "postgres:15.18-bookworm",
            "docker.io/library/postgres:15.18-bookworm",
            "docker.io/library/postgres",
        ),
        ("prom/prometheus:v3.13.1", "docker.io/prom/prometheus:v3.13.1", "docker.io/prom/prometheus"),
        ("localhost/x/y:1", "localhost/x/y:1", "localhost/x/y"),
        ("registry.example:5000/a:1", "registry.example:5000/a:1", "registry.example:5000/a"),
    ],
)
def test_image_names_are_qualified_as_docker_does(image: str, name: str, repository: str) -> None:
    assert qualified(image) == name
    assert repository_of(image) == repository


def test_every_upstream_image_of_the_dockerfile_and_compose_but_grafana_has_a_stand_in() -> None:
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    upstream = {spec["image"] for spec in services.values() if "build" not in spec}
    upstream |= set(dockerfile_bases(ROOT / "Dockerfile"))

    without = {image for image in upstream if repository_of(image) not in STANDINS}

    assert without == {"grafana/grafana:12.2.1"}
    assert dockerfile_bases(ROOT / "Dockerfile") == ["python:3.11.7-slim-bookworm"]


def test_the_readme_compose_block_holds_the_seed_commands_in_order() -> None:
    lines = readme_compose_commands(ROOT / "README.md")
    compose = [line for line in lines if line.startswith("docker-compose ")]

    assert lines[0] == "cp .env.example .env"
    assert compose[:3] == [
        "docker-compose up -d postgres mlflow prometheus",
        "docker-compose run --rm train",
        "docker-compose up -d api",
    ]


def test_published_port_variables_are_read_from_the_compose_file() -> None:
    assert published_port_variables(ROOT / "docker-compose.yml") == {
        "MLFLOW_PORT": 5001,
        "SCORING_PORT": 5002,
        "SUPERVISOR_PORT": 5003,
        "API_PORT": 8000,
        "PROMETHEUS_PORT": 9090,
        "GRAFANA_PORT": 3000,
    }


def test_set_env_values_edits_lines_in_place_and_appends_new_ones(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# API_PORT=1 stays a comment\nAPI_PORT=8000\nPOSTGRES_PASSWORD=mlflow\n")

    set_env_values(env, {"API_PORT": "41234", "COMPOSE_PROJECT_NAME": "p1"})

    assert env.read_text() == (
        "# API_PORT=1 stays a comment\nAPI_PORT=41234\nPOSTGRES_PASSWORD=mlflow\nCOMPOSE_PROJECT_NAME=p1\n"
    )


def test_the_engine_keeps_everything_in_its_state_folder(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "state").prepare()
    env = engine.env({})

    conf = Path(env["CONTAINERS_CONF"]).read_text()
    storage = Path(env["CONTAINERS_STORAGE_CONF"]).read_text()

    assert f'graphroot = "{tmp_path}/state/storage"' in storage
    assert f'network_config_dir = "{tmp_path}/state/networks"' in conf
    assert 'runtime = "runc"' in conf
    assert 'cgroup_manager = "cgroupfs"' in conf
    assert '"nofile=20000:20000"' in conf
    assert all(str(tmp_path) in env[key] for key in ("CONTAINERS_CONF", "CONTAINERS_REGISTRIES_CONF"))
