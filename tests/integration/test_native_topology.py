"""The Compose topology proven natively: PostgreSQL MLflow, training, serving supervisor, facade, Prometheus.

No Docker engine runs on our machines, so this starts the same servers Compose would, with the
same commands, on free 127.0.0.1 ports, and Prometheus scrapes the facade with the repository's
own ``prometheus.yml`` rendered for localhost.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from model_code.schema import EXAMPLE_APPLICANTS
from scripts.processes import PROJECT_ROOT, ManagedProcess, free_port
from tests.figures import record
from tests.integration.servers import Postgres, Stack

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Postgres.available(), reason="PostgreSQL 15 server binaries are not installed"),
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="the prometheus binary is not installed"),
]

# The scrape jobs of prometheus.yml that must be up once the stack runs.
EXPECTED_JOBS = ("credit-score-api", "mlflow", "serving-supervisor", "prometheus")


def readme_promql() -> list[str]:
    """The PromQL examples of the README's metrics section, one expression a line."""
    block = re.search(r"```promql\n(.*?)```", (PROJECT_ROOT / "README.md").read_text(), re.S)
    assert block, "the README has no promql block"
    lines = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def render_prometheus_config(stack: Stack, prometheus_port: int, path: Path) -> Path:
    """prometheus.yml with Compose's service addresses replaced by our local ports, scraping every second."""
    local_ports = {
        "api:8000": stack.api_port,
        "mlflow:5001": stack.mlflow_port,
        "model:5002": stack.scoring_port,
        "model:5003": stack.supervisor_port,
        "localhost:9090": prometheus_port,
    }
    config: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "prometheus.yml").read_text())
    config.setdefault("global", {}).update({"scrape_interval": "1s", "evaluation_interval": "1s"})
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            targets = []
            for target in static["targets"]:
                targets.append(f"127.0.0.1:{local_ports[target]}")
            static["targets"] = targets
    path.write_text(yaml.safe_dump(config))
    return path


class Topology:
    def __init__(self, stack: Stack, prometheus_url: str, seconds_to_ready: float) -> None:
        self.stack, self.prometheus_url, self.seconds_to_ready = stack, prometheus_url, seconds_to_ready

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp("topology")
    postgres: Postgres | None = None
    stack: Stack | None = None
    prometheus: ManagedProcess | None = None
    try:
        postgres = Postgres.create()
        started = time.monotonic()
        postgres.start()
        stack = Stack(root, postgres.create_database("mlflow"), expose_metrics=True)
        stack.start_tracking()
        stack.train("n_samples=4000", "n_estimators=30")
        stack.start_supervisor()
        # NB: decision records in a database of their own on the same PostgreSQL, as in Compose.
        postgres.create_database("decisions")
        stack.start_facade(DECISIONS_DATABASE_URL=postgres.url("decisions"))
        seconds_to_ready = time.monotonic() - started
        record(
            request.config,
            "topology (tests/integration/test_native_topology.py)",
            f"PostgreSQL start to facade ready: {seconds_to_ready:.1f} s "
            "(initdb excluded; mlflow server, mlflow run ., the serving supervisor's mlflow models serve and "
            "the facade included)",
        )

        prometheus_port = free_port()
        config = render_prometheus_config(stack, prometheus_port, root / "prometheus.yml")
        prometheus = ManagedProcess(
            "prometheus",
            [shutil.which("prometheus") or "prometheus", f"--config.file={config}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}", f"--storage.tsdb.path={root / 'tsdb'}"],
            root / "prometheus.log",
            cwd=root,
        ).start()  # fmt: skip
        prometheus.wait_http(f"http://127.0.0.1:{prometheus_port}/-/ready", timeout=60)
        yield Topology(stack, f"http://127.0.0.1:{prometheus_port}", seconds_to_ready)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if stack is not None:
            stack.stop()
        if postgres is not None:
            postgres.stop()


def test_runs_and_registry_live_in_postgresql(topology: Topology) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=topology.stack.tracking_uri)

    champion = client.get_model_version_by_alias("credit-score", "champion")

    assert str(champion.version) == "1"
    assert topology.stack.backend_store_uri.startswith("postgresql+psycopg2://")
    assert (topology.stack.root / "artifacts").is_dir(), "artifacts are served by the tracking server"


def test_facade_answers_through_the_postgresql_backed_registry(topology: Topology) -> None:
    api = topology.stack.api_url

    approved = httpx.post(f"{api}/api/v1/predict", json=EXAMPLE_APPLICANTS["approved"], timeout=30)
    rejected = httpx.post(f"{api}/api/v1/predict", json=EXAMPLE_APPLICANTS["rejected"], timeout=30)

    assert [approved.json()["prediction"], rejected.json()["prediction"]] == ["APPROVED", "REJECTED"]
    assert approved.json()["model_version"] == "1"
    # Both decisions were recorded in PostgreSQL, with the real model's run and threshold.
    for answer, applicant in ((approved, "approved"), (rejected, "rejected")):
        record = httpx.get(f"{api}/api/v1/decisions/{answer.json()['application_id']}", timeout=30).json()
        assert record["application"] == EXAMPLE_APPLICANTS[applicant]
        assert record["prediction"] == answer.json()["prediction"]
        assert record["reasons"] == answer.json()["reasons"]
        assert record["model_version"] == "1"
        assert record["decision_threshold"] == 0.5  # NB: the MLproject's default, the run's param
    assert httpx.get(f"{api}/api/v1/decisions/verify", timeout=30).json()["ok"] is True


def test_prometheus_scrapes_the_facade_and_readme_queries_return_data(topology: Topology) -> None:
    api = topology.stack.api_url
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        up = {r["metric"]["job"]: r["value"][1] for r in topology.query("up")}
        if all(up.get(job) == "1" for job in EXPECTED_JOBS):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"Prometheus did not see every job up: {up}")

    for name in ("approved", "rejected", "approved"):
        httpx.post(f"{api}/api/v1/predict", json=EXAMPLE_APPLICANTS[name], timeout=30)
    httpx.post(
        f"{api}/api/v1/predict/batch", json={"applications": [EXAMPLE_APPLICANTS["approved"]] * 3}, timeout=30
    )

    # rate() needs two scrapes after the traffic: poll until every README query has data.
    pending = readme_promql()
    assert len(pending) >= 4
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        pending = [q for q in pending if not topology.query(q)]
        time.sleep(1)
    assert pending == [], "README PromQL examples without data"
