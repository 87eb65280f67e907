"""Deployment, the last step of the flow: the Dockerfile, Compose, Prometheus and Grafana files, checked."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import commands

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_CONFIG = ROOT / "prometheus.yml"
GRAFANA = ROOT / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "credit-score.json"

SERVICES = {"postgres", "mlflow", "train", "model", "api", "redis", "prometheus", "grafana"}
# Container ports each service publishes, as the README documents; postgres and train publish none.
PUBLISHED = {
    "mlflow": (5001,),
    "model": (5002, 5003),
    "api": (8000,),
    "prometheus": (9090,),
    "grafana": (3000,),
}
BUILT_IMAGES = {"credit-score-api", "credit-score-mlflow"}

# The facade's metric families as the README documents them (the six of the public contract first).
DOCUMENTED_FAMILIES = {
    "http_requests_total": "counter",
    "http_request_duration_seconds": "histogram",
    "http_requests_in_flight": "gauge",
    "predictions_total": "counter",
    "prediction_duration_seconds": "histogram",
    "batch_prediction_size": "histogram",
    "model_loaded": "gauge",
    "upstream_request_duration_seconds": "histogram",
    "upstream_errors_total": "counter",
    "credit_feature_psi": "gauge",
    "credit_score_psi": "gauge",
    "credit_auth_failures_total": "counter",
    "credit_rate_limited_total": "counter",
    "credit_rate_limit_storage_errors_total": "counter",
    "credit_shadow_sampled_total": "counter",
    "credit_shadow_comparisons_total": "counter",
    "credit_shadow_dropped_total": "counter",
    "credit_shadow_failed_total": "counter",
    "credit_shadow_risk_delta": "histogram",
    "credit_shadow_request_duration_seconds": "histogram",
    "credit_shadow_queued": "gauge",
}
# The serving supervisor's families, on its own /metrics.
SUPERVISOR_FAMILIES = {
    "credit_model_rollouts_total": "counter",
    "credit_model_rollout_duration_seconds": "histogram",
    "credit_model_served_version": "gauge",
    "credit_model_server_exits_total": "counter",
    "credit_model_servers_draining": "gauge",
    "credit_model_supervisor_errors_total": "counter",
}
# What the dashboard must show, by the series it queries.
DASHBOARD_MUST_QUERY = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "predictions_total",
    "prediction_duration_seconds_bucket",
    "batch_prediction_size_bucket",
    "model_loaded",
    "upstream_errors_total",
    "credit_feature_psi",
    "credit_score_psi",
    "credit_model_rollouts_total",
    "credit_shadow_comparisons_total",
    "credit_shadow_risk_delta_bucket",
    "credit_shadow_request_duration_seconds_bucket",
    "credit_shadow_dropped_total",
    "credit_shadow_failed_total",
}
# Metric-name-shaped tokens in PromQL: the suffixes of the facade's families and their series.
METRIC_TOKEN = re.compile(
    r"\b[a-z_]+(?:_total|_seconds(?:_bucket|_sum|_count)?|_size(?:_bucket|_sum|_count)?|_delta(?:_bucket|_sum|_count)?"
    r"|_loaded|_in_flight|_psi)\b"
)
# A Compose ${VAR}, ${VAR:-default} or ${VAR-default} reference: name, operator, default.
# NB: `$${VAR}` is an escape that leaves the expansion to the container's shell: not a reference.
REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) is not installed"
)
needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose (Debian's v1 package) is not installed"
)


# --- helpers --------------------------------------------------------------------------------------


def env_example() -> dict[str, str]:
    """The active KEY=value lines of .env.example."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def uncommented(text: str) -> str:
    """YAML text without its comment lines (commented-out settings are documentation, not use)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's substitution (${VAR}, ${VAR:-default}, ${VAR-default}, $$), enough for these checks."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3) or ""
        if operator == ":-":
            return env.get(name) or default
        if operator == "-":
            return env.get(name, default)
        return env.get(name, "")

    return REFERENCE.sub(substitute, value).replace("$$", "$")


@cache
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose sees it with .env.example's values."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return dict(interpolate(loaded, env_example()))


def service(name: str) -> dict[str, Any]:
    result: dict[str, Any] = compose()["services"][name]
    return result


def depends_on(name: str) -> dict[str, str]:
    """A service's dependencies and their conditions (the short list form means service_started)."""
    raw = service(name).get("depends_on", {})
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {dep: spec.get("condition", "service_started") for dep, spec in raw.items()}


def command(name: str) -> list[str]:
    raw = service(name).get("command", [])
    return raw.split() if isinstance(raw, str) else [str(part) for part in raw]


def raw_command(name: str) -> list[str]:
    """A service's command as written, before interpolation."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())["services"][name].get("command", [])
    return raw.split() if isinstance(raw, str) else [str(part) for part in raw]


def healthcheck_test(name: str) -> str:
    test = service(name).get("healthcheck", {}).get("test", [])
    return " ".join(test) if isinstance(test, list) else str(test)


def compose_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for docker-compose: none of the stack's variables, which would win over the file."""
    names = set(env_example()) | {m[0] for m in REFERENCE.findall(COMPOSE_FILE.read_text())}
    env = {key: value for key, value in os.environ.items() if key not in names}
    env.update(extra or {})
    return env


@dataclass
class Stage:
    """One stage of the Dockerfile: its FROM line and its instructions, continuation lines joined."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def dockerfile_stages() -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    logical = re.sub(r"\\\n", " ", "\n".join(_dockerfile_lines()))
    current: Stage | None = None
    for line in logical.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), flags=re.IGNORECASE)
            assert match, f"unreadable FROM line: {line}"
            current = Stage(name=match.group(2) or f"stage{len(stages)}", base=match.group(1))
            stages[current.name] = current
        elif current is not None:
            current.instructions.append((keyword, " ".join(args.split())))
    return stages


def _dockerfile_lines() -> Iterator[str]:
    # NB: comment lines inside a continued instruction are dropped by Docker, so here too.
    for line in DOCKERFILE.read_text().splitlines():
        if not line.lstrip().startswith("#"):
            yield line


def _families_from_exposition(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))


def _families_from_app() -> dict[str, str]:
    from fastapi.testclient import TestClient

    from facade.main import create_app

    response = TestClient(create_app()).get("/metrics")
    response.raise_for_status()
    return _families_from_exposition(response.text)


def _families_of_the_supervisor() -> dict[str, str]:
    """The serving supervisor's families, from its metrics module alone (its app needs a registry)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from serving import metrics

    registry = CollectorRegistry()
    for collector in (
        metrics.ROLLOUTS,
        metrics.ROLLOUT_DURATION,
        metrics.SERVED_VERSION,
        metrics.SERVER_EXITS,
        metrics.DRAINING,
        metrics.LOOP_ERRORS,
    ):
        registry.register(collector)
    return _families_from_exposition(generate_latest(registry).decode())


@cache
def facade_families() -> tuple[str, dict[str, str]]:
    """The facade's metric families (name -> type), read from the app's own /metrics.

    NB: no fallback to the source or the README: a facade that cannot build must fail this check.
    """
    return "app", _families_from_app()


def series_of(families: dict[str, str]) -> set[str]:
    """The series names families expose: counter _total, histogram _bucket/_sum/_count, _created."""
    series: set[str] = set()
    for name, kind in families.items():
        if kind == "counter":
            base = name.removesuffix("_total")
            series |= {f"{base}_total", f"{base}_created"}
        elif kind == "histogram":
            series |= {name, f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
        else:
            series.add(name)
    return series


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


# --- docker-compose.yml -----------------------------------------------------------------------


@needs_compose
@pytest.mark.parametrize("env_file", ["example", "empty"])
def test_docker_compose_config_accepts_the_file(tmp_path: Path, env_file: str) -> None:
    """Debian's docker-compose 1.29 validates the file, with .env.example's values and with none
    (then the defaults written in the file apply). No engine is needed for `config`."""
    env_path = tmp_path / ".env"
    if env_file == "example":
        shutil.copy(ENV_EXAMPLE, env_path)
    else:
        env_path.write_text("")
    result = subprocess.run(
        ["docker-compose", "--env-file", str(env_path), "-f", str(COMPOSE_FILE), "config"],
        cwd=tmp_path,
        env=compose_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # NB: v1 warns, without failing, about unset variables and unknown keys: none are expected.
    assert "WARNING" not in result.stderr, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == SERVICES
    for name, spec in resolved["services"].items():
        assert ":" in spec["image"], name
        assert not spec["image"].endswith(":latest"), name


def test_compose_has_the_eight_services_and_no_top_level_name() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert set(raw["services"]) == SERVICES
    # NB: Compose v1 rejects a top-level `name:`.
    assert "name" not in raw


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned(name: str) -> None:
    image = service(name)["image"]
    repository, _, tag = image.rpartition(":")
    assert repository, f"{name}: image {image!r} has no tag"
    assert "/" not in tag, f"{name}: image {image!r} has no tag"
    assert tag != "latest", f"{name}: image {image!r} is not pinned"
    if repository not in BUILT_IMAGES:
        # Third-party images: a full version, not a moving major/minor tag such as `15` or `v3`.
        assert re.fullmatch(r"v?\d+\.\d+\.\d+(-[a-z0-9.]+)?|\d+\.\d+(-[a-z0-9.]+)?", tag), image


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("postgres", "pg_isready"),
        ("mlflow", "5001/health"),
        ("model", "5002/ping"),
        ("api", "8000/api/v1/health/ready"),
        ("redis", "redis-cli ping"),
        ("prometheus", "9090/-/ready"),
        ("grafana", "3000/api/health"),
    ],
)
def test_long_running_services_have_healthchecks(name: str, needle: str) -> None:
    check = service(name)["healthcheck"]
    assert not check.get("disable", False)
    assert needle in healthcheck_test(name)
    assert check.get("interval")
    assert check.get("retries")


def test_the_api_shares_its_rate_limits_through_a_non_root_redis_without_persistence() -> None:
    api, redis = service("api"), service("redis")
    assert depends_on("api")["redis"] == "service_healthy"
    assert api["environment"]["RATE_LIMIT_STORAGE_URL"].startswith("redis://")
    assert api["environment"]["RATE_LIMIT_STORAGE_URL"].endswith("@redis:6379/0")
    assert redis["user"].split(":")[0] not in {"root", "0"}
    command = redis["command"]
    assert command[command.index("--save") + 1] == ""
    assert command[command.index("--appendonly") + 1] == "no"
    assert "--requirepass" in command
    assert "volumes" not in redis


def test_the_training_job_is_one_shot() -> None:
    train = service("train")
    assert train["restart"] == "no"
    # NB: the image's tracking-server healthcheck makes no sense for a job.
    assert train["healthcheck"].get("disable") is True


def test_dependency_order_api_model_mlflow_postgres() -> None:
    assert depends_on("api")["model"] == "service_healthy"
    assert depends_on("model") == {"mlflow": "service_healthy"}
    assert depends_on("mlflow") == {"postgres": "service_healthy"}
    assert depends_on("train") == {"mlflow": "service_healthy"}
    assert depends_on("postgres") == {}


def test_nothing_depends_on_the_training_job() -> None:
    """`docker-compose up -d api` must not start (and so re-run) the training job."""
    for name in SERVICES:
        assert "train" not in depends_on(name), name


def _published(name: str) -> set[int]:
    ports = set()
    for entry in service(name).get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
            continue
        *_, container = str(entry).split(":")
        ports.add(int(container.split("/")[0]))
    return ports


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_published_ports_are_the_documented_ones(name: str) -> None:
    expected = set(PUBLISHED.get(name, ()))
    assert _published(name) == expected


def test_host_ports_are_settings_that_default_to_the_container_ports() -> None:
    """Each published port is `${BIND_HOST}:${<NAME>_PORT:-<port>}:<port>`, its variable in .env.example."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    documented = env_example()
    for name, ports in PUBLISHED.items():
        assert len(raw[name]["ports"]) == len(ports), name
        for entry, port in zip(raw[name]["ports"], ports, strict=True):
            match = re.fullmatch(r"\$\{BIND_HOST:-127\.0\.0\.1\}:\$\{([A-Z_]+_PORT):-(\d+)\}:(\d+)", entry)
            assert match, f"{name}: {entry!r}"
            variable, default, container = match.groups()
            assert int(default) == int(container) == port, name
            assert documented[variable] == default, f"{variable} in .env.example"


def test_every_compose_variable_is_in_env_example() -> None:
    used = {m[0] for m in REFERENCE.findall(uncommented(COMPOSE_FILE.read_text()))}
    documented = set(env_example())
    assert used <= documented, f"missing from .env.example: {sorted(used - documented)}"
    assert documented <= used, f"unused in docker-compose.yml: {sorted(documented - used)}"


def test_env_example_comments_every_variable() -> None:
    """Each block of variables (lines between blank lines) carries a comment saying what it is."""
    for block in re.split(r"\n\s*\n", ENV_EXAMPLE.read_text()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        keys = [line for line in lines if not line.startswith("#")]
        assert not keys or any(line.startswith("#") for line in lines), f"no comment for {keys}"


def test_containers_call_the_tracking_server_by_an_explicit_uri() -> None:
    """Resolving models:/ without MLFLOW_TRACKING_URI silently creates an empty SQLite store."""
    for name in ("train", "model", "api"):
        assert service(name)["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5001", name
    assert service("api")["environment"]["SCORING_URL"] == "http://model:5002"
    assert service("api")["environment"]["SUPERVISOR_URL"] == "http://model:5003"


def test_commands_are_the_natively_proven_ones() -> None:
    """The same commands as scripts/commands.py (`make run`), with PostgreSQL and container-only flags."""
    server = command("mlflow")
    assert server[:2] == ["mlflow", "server"]
    # NB: the store URI holds the database password: in the environment (which `mlflow server`
    # reads), never on the command line that process listings show.
    assert "--backend-store-uri" not in server
    assert not any("POSTGRES_PASSWORD" in part or "@postgres:" in part for part in raw_command("mlflow"))
    store_uri = service("mlflow")["environment"]["MLFLOW_BACKEND_STORE_URI"]
    # NB: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the image has psycopg2-binary.
    assert store_uri.startswith("postgresql+psycopg2://")
    assert store_uri.endswith("@postgres:5432/mlflow")
    assert "--serve-artifacts" in server
    assert "--artifacts-destination" in server
    assert server[server.index("--workers") + 1] == "1"
    assert server[server.index("--host") + 1] == "0.0.0.0"
    assert server[server.index("--port") + 1] == "5001"
    # NB: without it, MLflow's host check answers 403 to http://mlflow:5001 from the containers,
    # and to the UI on any host port but the default one. MLflow matches with fnmatch.
    allowed = server[server.index("--allowed-hosts") + 1].split(",")
    for host in ("mlflow:5001", "localhost:5001", "127.0.0.1:5001", "127.0.0.1:15001", "localhost:40123"):
        assert any(fnmatch.fnmatch(host, pattern) for pattern in allowed), host
    assert not any(fnmatch.fnmatch("evil.example:5001", pattern) for pattern in allowed)
    assert service("mlflow")["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"

    assert command("train")[:5] == ["mlflow", "run", ".", "--env-manager", "local"]
    # NB: the image's python is the interpreter `make run` names by its path.
    assert command("model") == ["python", *commands.serving_supervisor()[1:]]
    model = service("model")["environment"]
    assert (model["MODEL_NAME"], model["MODEL_ALIAS"]) == ("credit-score", "champion")
    assert (model["SCORING_PORT"], model["SUPERVISOR_PORT"]) == ("5002", "5003")
    assert (model["SERVING_HOST"], model["SERVING_ADVERTISE_HOST"]) == ("0.0.0.0", "model")


def test_compose_rolls_out_every_ten_seconds_and_shadows_a_tenth() -> None:
    """The issue's defaults: the alias is read every 10 s; the api and the supervisor agree on the shadow."""
    assert service("model")["environment"]["ROLLOUT_POLL_SECONDS"] == "10"
    assert service("model")["environment"]["SHADOW_SAMPLE_RATE"] == "0.1"
    assert service("api")["environment"]["SHADOW_SAMPLE_RATE"] == "0.1"


# --- prometheus.yml ---------------------------------------------------------------------------------


@needs_promtool
def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_facade_the_tracking_server_and_the_supervisor() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["credit-score-api"]
    assert api["metrics_path"] == "/metrics"
    assert api["static_configs"][0]["targets"] == ["api:8000"]
    # The mlflow job is only worth having because the server runs with --expose-prometheus.
    assert jobs["mlflow"]["static_configs"][0]["targets"] == ["mlflow:5001"]
    assert "--expose-prometheus" in command("mlflow")
    assert jobs["serving-supervisor"]["static_configs"][0]["targets"] == ["model:5003"]
    mount = next(v for v in service("prometheus")["volumes"] if v.startswith("./prometheus.yml:"))
    assert mount.split(":")[1] == "/etc/prometheus/prometheus.yml"


# --- Grafana ------------------------------------------------------------------------------------------


def test_grafana_provisioning_points_at_prometheus_and_the_mounted_dashboards() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["uid"] == "prometheus"
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"

    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in service("grafana")["volumes"] if v.startswith("./"))
    for provider in providers["providers"]:
        assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_dashboard_parses_and_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    assert dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus", panel["title"]


def test_the_app_exports_every_documented_family_with_its_type() -> None:
    _, families = facade_families()

    assert {name: families.get(name) for name in DOCUMENTED_FAMILIES} == DOCUMENTED_FAMILIES


def test_the_supervisor_exports_every_documented_family_with_its_type() -> None:
    families = _families_of_the_supervisor()

    assert {name: families.get(name) for name in SUPERVISOR_FAMILIES} == SUPERVISOR_FAMILIES


def test_dashboard_queries_only_series_the_facade_or_the_supervisor_exports() -> None:
    source, families = facade_families()
    exported = series_of(families) | series_of(_families_of_the_supervisor())
    queried = {token for expr in dashboard_exprs() for token in METRIC_TOKEN.findall(expr)}
    assert queried, "no metric found in the dashboard's expressions"
    assert queried <= exported, f"not exported by the facade ({source}): {sorted(queried - exported)}"
    assert queried >= DASHBOARD_MUST_QUERY, f"not on the dashboard: {sorted(DASHBOARD_MUST_QUERY - queried)}"


@needs_promtool
def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule ($__rate_interval as Grafana fills it)."""
    rules = [
        {"record": f"dashboard:expr_{index}", "expr": expr.replace("$__rate_interval", "1m")}
        for index, expr in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Dockerfile ---------------------------------------------------------------------------------------


def test_every_from_is_pinned_or_a_previous_stage() -> None:
    stages = dockerfile_stages()
    assert {"facade", "mlflow"} <= set(stages)
    seen: set[str] = set()
    for name, stage in stages.items():
        if stage.base not in seen:
            repository, _, tag = stage.base.rpartition(":")
            assert repository, stage.base
            assert tag, stage.base
            assert tag != "latest", stage.base
            assert "$" not in stage.base, stage.base
            assert re.search(r"\d+\.\d+\.\d+", tag), f"{stage.base}: pin a full version"
        seen.add(name)
    assert stages["python-base"].base == "python:3.11.7-slim-bookworm"


@pytest.mark.parametrize("target", ["facade", "mlflow"])
def test_final_stages_run_as_non_root_with_a_healthcheck(target: str) -> None:
    stage = dockerfile_stages()[target]
    users = stage.all("USER")
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    (healthcheck,) = stage.all("HEALTHCHECK")
    # NB: a malformed JSON array silently becomes shell form, which slim images run as /bin/sh -c.
    exec_form = healthcheck[healthcheck.index("CMD") + len("CMD") :].strip()
    assert exec_form.startswith("[")
    assert json.loads(exec_form)[0] == "python"
    assert stage.all("CMD")


def test_the_facade_image_installs_no_model_stack() -> None:
    stages = dockerfile_stages()
    facade = stages["facade"]
    text = " ".join(args for _, args in facade.instructions).lower()
    for banned in ("mlflow", "scikit-learn", "sklearn", "pandas", "training/", "credit_model", "pyfunc"):
        assert banned not in text, banned
    assert "--from=builder-facade /install/facade /usr/local" in facade.all("COPY")
    (install,) = stages["builder-facade"].all("RUN")
    facade_install = install.split("--prefix=/install/facade", 1)[1].split("&&", 1)[0].split()
    assert facade_install == ["-r", "/tmp/requirements-facade.txt"]
    # The requirement list is the facade extra alone.
    (lists,) = stages["requirements"].all("RUN")
    assert "'facade': ['facade']" in lists
    # And the extra it installs has none of them either.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[=<>!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in extras["facade"]}
    assert names.isdisjoint({"mlflow", "mlflow-skinny", "scikit-learn", "pandas", "numpy"})


NO_CACHE = shutil.ignore_patterns("__pycache__")


def test_the_facade_image_files_suffice_to_build_the_app(tmp_path: Path) -> None:
    """Only what the facade stage copies, with mlflow, scikit-learn and pandas made unimportable."""
    app_dir = tmp_path / "app"
    for args in dockerfile_stages()["facade"].all("COPY"):
        if args.startswith("--"):
            continue
        *sources, destination = args.split()
        for source in sources:
            origin = ROOT / source
            target = app_dir / destination / (origin.name if not source.endswith("/") else "")
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True, ignore=NO_CACHE)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(origin, target)
    probe = textwrap.dedent(
        """
        import sys
        BLOCKED = {"mlflow", "sklearn", "pandas", "training", "skops"}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{name} is not in the facade image")
        sys.meta_path.insert(0, Block())
        import facade
        import os
        assert facade.__file__.startswith(os.getcwd()), facade.__file__
        from facade.main import create_app
        from fastapi.testclient import TestClient
        assert TestClient(create_app()).get("/api/v1/health").status_code == 200
        # NB: the venv's editable install would otherwise supply a module the image lacks.
        ours = [m for n, m in list(sys.modules.items()) if n.split(".")[0] in {"facade", "model_code"}]
        outside = [m.__name__ for m in ours if not (m.__file__ or "").startswith(os.getcwd())]
        assert not outside, f"imported from outside the image: {outside}"
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=app_dir, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_the_mlflow_image_has_the_postgres_driver_the_exporter_and_the_supervisor_pinned() -> None:
    """From pyproject.toml's `server` and `serving` extras, pinned there (one home for every pin)."""
    stages = dockerfile_stages()
    (lists,) = stages["requirements"].all("RUN")
    assert "'model': ['model', 'server', 'serving']" in lists
    (install,) = stages["builder-model"].all("RUN")
    assert install.split("--prefix=/install/model", 1)[1].split("&&", 1)[0].split() == [
        "-r", "/tmp/requirements-model.txt",
    ]  # fmt: skip
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = {requirement.split("==")[0]: requirement for requirement in extras["server"]}
    assert set(pins) == {"psycopg2-binary", "prometheus-flask-exporter"}
    assert all(re.fullmatch(r"[a-z0-9-]+==\d+\.\d+\.\d+", pin) for pin in pins.values()), pins
    assert all(re.fullmatch(r"[a-z0-9-]+==\d+\.\d+\.\d+", pin) for pin in extras["serving"]), extras[
        "serving"
    ]
    mlflow = stages["mlflow"]
    assert "--from=builder-model /install/model /usr/local" in mlflow.all("COPY")
    copied = " ".join(mlflow.all("COPY"))
    for needed in ("MLproject", "conda.yaml", "pyproject.toml", "model_code/", "training/", "serving/"):
        assert needed in copied, needed


def test_no_secret_is_baked_into_a_layer() -> None:
    for stage in dockerfile_stages().values():
        for keyword, args in stage.instructions:
            if keyword in {"ENV", "ARG"}:
                assert not re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", args, flags=re.IGNORECASE), args
    ignored = set(DOCKERIGNORE.read_text().split())
    assert {".env", ".git", ".venv", ".run", "mlruns", "mlflow.db", "tests", "data"} <= ignored
    assert {"**/__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"} <= ignored


def test_the_records_init_script_keeps_the_password_off_every_command_line(tmp_path: Path) -> None:
    """The script as the postgres image runs it, with a psql that records how it was called."""
    calls = tmp_path / "calls"
    psql = tmp_path / "psql"
    psql.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" >> {calls}\ncat >> {calls}.stdin\n')
    psql.chmod(0o755)
    password = "s3cret-'quoted\"-pw"
    env = {
        "PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin",
        "DECISIONS_DB_USER": "decisions",
        "DECISIONS_DB_PASSWORD": password,
        "DECISIONS_DB_NAME": "decisions",
    }

    subprocess.run(
        ["sh", str(ROOT / "postgres" / "initdb" / "10-decisions.sh")], env=env, check=True, timeout=30
    )

    argv = calls.read_text()
    assert "ON_ERROR_STOP=1" in argv  # NB: it was called
    assert "s3cret" not in argv
    script = Path(f"{calls}.stdin").read_text()
    assert "s3cret" not in script  # NB: read by psql itself, from its environment
    assert "\\getenv password DECISIONS_DB_PASSWORD" in script
