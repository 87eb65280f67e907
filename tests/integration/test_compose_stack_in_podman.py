"""The README's Docker Compose quick start, run for real in containers by podman-compose.

Builds both Dockerfile targets with buildah (on stand-in base images when no registry is
reachable, as on our CI machines), runs the README's commands verbatim with `podman-compose` in
place of `docker-compose`, in a copy of the project with `.env` made from `.env.example`, and
checks what an operator would: the MLflow UI, the champion the train job registered, the API
with and without a key, metrics, Prometheus' targets, non-root containers, healthy health
checks; then `down -v` leaves nothing of the project behind. Images and layers stay in the
state folder of scripts/containers (the cache that makes a second run quick).
"""

from __future__ import annotations

import secrets
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import yaml

from model_code.schema import EXAMPLE_APPLICANTS
from scripts.containers.compose import (
    ComposeProject,
    copy_project,
    podman_compose_binary,
    published_port_variables,
    readme_compose_commands,
    set_env_values,
)
from scripts.containers.engine import Engine, default_state_dir, missing_requirements, say
from scripts.containers.images import build_images
from scripts.containers.standins import STANDINS, repository_of
from scripts.processes import PROJECT_ROOT, free_port, port_is_free
from tests.figures import record


def _why_not() -> str | None:
    reason = missing_requirements()
    if reason is None and podman_compose_binary() is None:
        reason = "podman-compose is not installed (pip install podman-compose==1.6.0, in the dev extra)"
    return reason


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_why_not() is not None, reason=f"containers flow: {_why_not()}"),
]

FIGURE = "containers (tests/integration/test_compose_stack_in_podman.py)"
Figure = Callable[[str, str], None]


@dataclass
class RunningStack:
    project: ComposeProject
    config: dict[str, Any]
    ports: dict[str, int]
    api_key: str
    skipped: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    down: bool = False

    def url(self, variable: str) -> str:
        return f"http://127.0.0.1:{self.ports[variable]}"

    def services_started(self) -> set[str]:
        """The long-running services the README's commands start (one-shot jobs excluded)."""
        return {
            name
            for name, spec in self.config["services"].items()
            if str(spec.get("restart", "no")) != "no" and name not in self.skipped
        }


def _compose_config(project: ComposeProject) -> dict[str, Any]:
    result = project.compose("config")
    assert result.returncode == 0, result.stderr[-3000:]
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def _without_standin(config: dict[str, Any]) -> set[str]:
    """Services whose image neither our Dockerfile builds nor a Debian stand-in replaces (Grafana)."""
    return {
        name
        for name, spec in config["services"].items()
        if "build" not in spec and repository_of(str(spec["image"])) not in STANDINS
    }


def _with_dependencies(config: dict[str, Any], services: list[str]) -> set[str]:
    """``services`` and everything they depend on, as Compose starts them."""
    found: set[str] = set()
    pending = list(services)
    while pending:
        service = pending.pop()
        if service not in found:
            found.add(service)
            pending += list(config["services"].get(service, {}).get("depends_on") or [])
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[RunningStack]:
    started = time.monotonic()
    engine = Engine(default_state_dir()).prepare()
    directory = copy_project(PROJECT_ROOT, tmp_path_factory.mktemp("compose") / "credit-score")
    name = f"credit-score-test-{uuid.uuid4().hex[:8]}"
    project = ComposeProject(engine, directory, name, log=say)
    ports: dict[str, int] = {}
    skipped: list[str] = []
    running: RunningStack | None = None
    try:
        for line in readme_compose_commands(directory / "README.md"):
            argv = shlex.split(line)
            if argv[0] != "docker-compose":
                result = project.shell(line)
                assert result.returncode == 0, f"{line}: {result.stderr[-2000:]}"
                if argv[:2] == ["cp", ".env.example"]:
                    # What the README asks of a user next: change the passwords. The test also
                    # publishes every port on a free loopback port and names its own project.
                    variables = published_port_variables(directory / "docker-compose.yml")
                    ports = {variable: free_port() for variable in variables}
                    set_env_values(
                        directory / ".env",
                        {
                            "POSTGRES_PASSWORD": secrets.token_urlsafe(18),
                            "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(18),
                            "COMPOSE_PROJECT_NAME": name,
                            **{variable: str(port) for variable, port in ports.items()},
                        },
                    )
                continue
            config = _compose_config(project)
            positional = [arg for arg in argv[2:] if not arg.startswith("-")]
            named = positional if argv[1] == "up" else positional[:1]
            without = _without_standin(config)
            if named and set(named) <= without:
                skipped += named  # NB: Grafana has no Debian package to stand in for its image.
                continue
            if needed := _with_dependencies(config, named) & without:
                pytest.fail(
                    f"{line}: no image for {sorted(needed)} here; give it a stand-in "
                    "(STANDINS in scripts/containers/standins.py and a Containerfile beside it)"
                )
            if running is None:
                running = RunningStack(project, config, ports, "", skipped)
                targets = {
                    spec["build"]["target"]: spec["image"]
                    for spec in config["services"].values()
                    if "build" in spec
                }
                upstream = [
                    str(spec["image"])
                    for service, spec in config["services"].items()
                    if "build" not in spec and service not in without
                ]
                building = time.monotonic()
                built = build_images(engine, directory, targets, upstream, log=project.log)
                running.timings["stand-ins and images"] = time.monotonic() - building
                record(
                    request.config,
                    f"{FIGURE} images",
                    ", ".join(f"{b.image} {b.size / 1e6:.0f} MB (built in {b.seconds:.0f} s)" for b in built),
                )
            step = time.monotonic()
            result = project.compose(*argv[1:])
            assert result.returncode == 0, f"{line}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            running.timings[line] = time.monotonic() - step
            running.timings[f"{line} (healthy)"] = project.wait_healthy(timeout=600)
        assert running is not None, "the README's Compose section runs no docker-compose command"
        running.api_key = (directory / "secrets" / "api_keys").read_text().split()[0]
        running.timings["total"] = time.monotonic() - started
        record(
            request.config,
            f"{FIGURE} flow",
            "; ".join(f"{step}: {seconds:.0f} s" for step, seconds in running.timings.items()),
        )
        yield running
    finally:
        if running is None or not running.down:
            project.compose("down", "-v", timeout=300)
        project.force_remove()


# --- what an operator checks ---------------------------------------------------------------------


def test_mlflow_ui_and_health_answer_on_the_published_port(stack: RunningStack, figure: Figure) -> None:
    mlflow = stack.url("MLFLOW_PORT")

    ui = httpx.get(f"{mlflow}/", timeout=30)
    health = httpx.get(f"{mlflow}/health", timeout=30)

    assert ui.status_code == 200, ui.text[:300]
    assert "<title>MLflow</title>" in ui.text, ui.text[:300]
    assert (health.status_code, health.text) == (200, "OK")
    figure(f"{FIGURE} MLflow", f"UI {ui.status_code}, /health {health.status_code} {health.text}")


def test_the_train_job_registered_the_champion_as_the_non_root_user(
    stack: RunningStack, figure: Figure
) -> None:
    mlflow = stack.url("MLFLOW_PORT")
    # What the serving supervisor serves: MODEL_NAME@MODEL_ALIAS.
    name, alias = (_model_environment(stack)[key] for key in ("MODEL_NAME", "MODEL_ALIAS"))

    champion = httpx.get(
        f"{mlflow}/api/2.0/mlflow/registered-models/alias", params={"name": name, "alias": alias}, timeout=30
    )
    assert champion.status_code == 200, champion.text
    version = champion.json()["model_version"]
    run = httpx.get(f"{mlflow}/api/2.0/mlflow/runs/get", params={"run_id": version["run_id"]}, timeout=30)

    assert version["version"] == "1"
    info = run.json()["run"]["info"]
    tags = {tag["key"]: tag["value"] for tag in run.json()["run"]["data"].get("tags", [])}
    assert info["status"] == "FINISHED"
    assert tags["mlflow.user"] == "app", "the train job ran as the image's service user"
    assert tags["mlflow.project.entryPoint"] == "main"
    figure(
        f"{FIGURE} champion",
        f"{name}@{alias} = version {version['version']}, run {info['status']} as {tags['mlflow.user']}",
    )


def test_predict_answers_200_with_a_key_and_401_without(stack: RunningStack, figure: Figure) -> None:
    api = stack.url("API_PORT")

    approved = httpx.post(
        f"{api}/api/v1/predict",
        json=EXAMPLE_APPLICANTS["approved"],
        headers={"X-API-Key": stack.api_key},
        timeout=30,
    )
    rejected = httpx.post(
        f"{api}/api/v1/predict",
        json=EXAMPLE_APPLICANTS["rejected"],
        headers={"Authorization": f"Bearer {stack.api_key}"},
        timeout=30,
    )
    anonymous = httpx.post(f"{api}/api/v1/predict", json=EXAMPLE_APPLICANTS["approved"], timeout=30)

    assert approved.status_code == 200, approved.text
    assert [approved.json()["prediction"], rejected.json()["prediction"]] == ["APPROVED", "REJECTED"]
    assert approved.json()["model_version"] == "1"
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert "WWW-Authenticate" in anonymous.headers
    assert stack.api_key not in approved.text + anonymous.text
    figure(
        f"{FIGURE} predict",
        f"with a key {approved.status_code} {approved.json()['prediction']} and {rejected.status_code} "
        f"{rejected.json()['prediction']} (model_version {approved.json()['model_version']}), "
        f"without {anonymous.status_code}",
    )


def test_metrics_count_the_predictions(stack: RunningStack) -> None:
    api = stack.url("API_PORT")
    headers = {"X-API-Key": stack.api_key}
    httpx.post(f"{api}/api/v1/predict", json=EXAMPLE_APPLICANTS["approved"], headers=headers, timeout=30)

    metrics = httpx.get(f"{api}/metrics", timeout=30)

    assert metrics.status_code == 200
    assert 'predictions_total{model_version="1",result="APPROVED"}' in metrics.text
    assert "model_loaded 1.0" in metrics.text


def test_prometheus_has_every_target_up(stack: RunningStack, figure: Figure) -> None:
    prometheus = stack.url("PROMETHEUS_PORT")
    config = yaml.safe_load((stack.project.directory / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    deadline = time.monotonic() + 90
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=30).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: f"{t['health']} {t['lastError']}".strip() for t in targets}
        if set(health) == jobs and all(value == "up" for value in health.values()):
            break
        time.sleep(2)
    assert health == dict.fromkeys(jobs, "up")
    figure(
        f"{FIGURE} Prometheus targets", ", ".join(f"{job} {state}" for job, state in sorted(health.items()))
    )


def test_every_service_runs_and_runs_as_a_non_root_user(stack: RunningStack, figure: Figure) -> None:
    containers = stack.project.containers()
    running = {stack.project.service_of(c): c for c in containers if c.get("State") == "running"}

    states = {stack.project.service_of(c): c.get("State") for c in containers}
    users: dict[str, list[str]] = {}
    assert set(running) == stack.services_started(), states
    for service, container in running.items():
        name = stack.project.name_of(container)
        image_user = stack.project.image_user(str(container["Image"]))
        assert image_user not in {"", "root", "0"}, f"{service}: its image runs as {image_user or 'root'}"
        for process in stack.project.processes(name):
            assert "root" not in {process["user"], process["huser"]}, f"{service}: {process}"
            assert process["user"] != "0", f"{service}: {process}"
        users[service] = sorted({process["user"] for process in stack.project.processes(name)})
    figure(f"{FIGURE} users", ", ".join(f"{service} {'/'.join(u)}" for service, u in sorted(users.items())))


def test_every_healthcheck_is_healthy(stack: RunningStack, figure: Figure) -> None:
    states = {}
    for container in stack.project.containers():
        name = stack.project.name_of(container)
        service = stack.project.service_of(container)
        if container.get("State") != "running":
            continue
        assert stack.project.has_healthcheck(name), f"{service} has no HEALTHCHECK"

        passed = stack.project.healthcheck_run(name)

        assert passed, f"{service}:\n{stack.project.logs(name)}"
        assert stack.project.health(name) == "healthy", f"{service}:\n{stack.project.logs(name)}"
        states[service] = stack.project.health(name)
    figure(f"{FIGURE} health", ", ".join(f"{service} {state}" for service, state in sorted(states.items())))


def test_built_images_keep_their_healthcheck_and_service_user(stack: RunningStack) -> None:
    """`--format docker`: an OCI image config has no HEALTHCHECK, and buildah would drop it."""
    for name, spec in stack.config["services"].items():
        if "build" not in spec:
            continue
        (info,) = stack.project.engine.podman_json("image", "inspect", str(spec["image"]))

        assert info["Config"].get("User") == "app", name
        assert (info.get("Healthcheck") or {}).get("Test", [""])[0] == "CMD", name


def test_a_new_champion_is_served_without_restarting_anything(stack: RunningStack, figure: Figure) -> None:
    """The README's retraining, then the alias moved as "Model rollouts" shows: the API follows."""
    api, mlflow = stack.url("API_PORT"), stack.url("MLFLOW_PORT")
    headers = {"X-API-Key": stack.api_key}
    # NB: fairness_max_gap=0: training never promotes it by itself, so the alias move below is what
    # makes version 2 the champion.
    train = stack.project.compose(
        "run", "--rm", "train", "mlflow", "run", ".", "--env-manager", "local",
        "-P", "n_samples=3000", "-P", "n_estimators=20", "-P", "seed=7", "-P", "fairness_max_gap=0",
    )  # fmt: skip
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]

    moved = time.monotonic()
    alias = httpx.post(
        f"{mlflow}/api/2.0/mlflow/registered-models/alias",
        json={"name": "credit-score", "alias": "champion", "version": "2"},
        timeout=30,
    )
    assert alias.status_code == 200, alias.text

    def version() -> str:
        answer = httpx.post(
            f"{api}/api/v1/predict", json=EXAMPLE_APPLICANTS["approved"], headers=headers, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["model_version"])

    deadline = time.monotonic() + 300
    while version() != "2":
        assert time.monotonic() < deadline, "the API never answered from version 2"
        time.sleep(1)
    seconds = time.monotonic() - moved
    info = httpx.get(f"{api}/api/v1/model/info", headers=headers, timeout=30).json()
    state = httpx.get(f"{stack.url('SUPERVISOR_PORT')}/state", timeout=30).json()

    assert info["version"] == "2"
    assert (info["rollout"]["state"], info["rollout"]["previous_version"]) == ("completed", "1")
    assert state["champion"]["version"] == "2"
    assert state["champion"]["url"].startswith("http://model:"), (
        "the api calls the server by the service's name"
    )
    figure(
        f"{FIGURE} rollout",
        f"alias moved to version 2: answered by it after {seconds:.0f} s "
        f"(poll 10 s, its start and gate {info['rollout']['start_seconds']:.0f} s)",
    )


def _model_environment(stack: RunningStack) -> dict[str, str]:
    """The `model` service's environment, as a mapping whichever form `config` printed it in."""
    raw = stack.config["services"]["model"]["environment"]
    if isinstance(raw, dict):
        return {key: str(value) for key, value in raw.items()}
    return dict(str(item).split("=", 1) for item in raw)


def test_down_v_leaves_nothing_behind(stack: RunningStack) -> None:
    result = stack.project.compose("down", "-v", timeout=300)
    stack.down = True

    assert result.returncode == 0, result.stderr[-3000:]
    assert stack.project.leftovers() == {}
    busy = {variable: port for variable, port in stack.ports.items() if not port_is_free("127.0.0.1", port)}
    assert busy == {}, "published ports still bound after down"
