"""The Kubernetes manifests, offline: rendered by kustomize, validated, and held to the stack's rules.

Core kinds go through ``kubernetes-validate --strict`` (Kubernetes' own schemas, unknown fields
refused); the custom resources (KEDA's ScaledObject, the Prometheus Operator's ServiceMonitor)
through ``check-jsonschema`` against the schemas vendored in deploy/kubernetes/schemas. No cluster
is needed: ``kubectl kustomize`` renders without one.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from facade.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
SCHEMAS = KUBERNETES / "schemas"
KUSTOMIZATIONS = {"base": KUBERNETES, "example-overlay": KUBERNETES / "overlays" / "example"}
CUSTOM_RESOURCES = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCHEMAS / "scaledobject_v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SCHEMAS / "servicemonitor_v1.json",
}
API, MODEL = "credit-score-api", "credit-score-model"
# The images the Dockerfile's two targets are built as (docker-compose.yml names them so too).
IMAGES = {API: "credit-score-api", MODEL: "credit-score-mlflow"}
# Settings that are no facade setting: the tracking server's database, recorded for operators.
EXTERNAL_SETTINGS = {"MLFLOW_BACKEND_STORE_URI"}

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl (with its built-in kustomize) is not installed: the manifests cannot be rendered",
)

Doc = dict[str, Any]


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@dataclass(frozen=True)
class Rendered:
    """One kustomization as `kubectl kustomize` renders it."""

    name: str
    text: str
    docs: list[Doc]

    def of_kind(self, kind: str) -> list[Doc]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str) -> Doc:
        (doc,) = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        return doc


@cache
def render(name: str) -> Rendered:
    result = subprocess.run(
        ["kubectl", "kustomize", str(KUSTOMIZATIONS[name])], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return Rendered(name, result.stdout, [d for d in yaml.safe_load_all(result.stdout) if d])


@pytest.fixture(params=list(KUSTOMIZATIONS))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return render(request.param)


def kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("kubernetes-validate"), "--strict", str(path)], capture_output=True, text=True, timeout=300
    )


def check_jsonschema(schema: Path, instance: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("check-jsonschema"), "--schemafile", str(schema), str(instance)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def is_custom(doc: Doc) -> bool:
    return (doc["apiVersion"], doc["kind"]) in CUSTOM_RESOURCES


# -- validation --------------------------------------------------------------------------------


def test_core_resources_pass_kubernetes_validate_strict(rendered: Rendered, tmp_path: Path) -> None:
    manifest = tmp_path / "core.yaml"
    manifest.write_text(yaml.safe_dump_all([d for d in rendered.docs if not is_custom(d)]))

    result = kubernetes_validate(manifest)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARN" not in result.stdout + result.stderr, "a kind without a schema was not validated"
    assert result.stdout.count("passed for resource") == len(rendered.docs) - sum(
        map(is_custom, rendered.docs)
    )


def test_custom_resources_match_their_vendored_schemas(rendered: Rendered, tmp_path: Path) -> None:
    custom = [d for d in rendered.docs if is_custom(d)]
    expected = {"ServiceMonitor"} | ({"ScaledObject"} if rendered.name == "example-overlay" else set())
    assert {d["kind"] for d in custom} == expected

    for doc in custom:
        instance = tmp_path / f"{doc['kind']}-{doc['metadata']['name']}.json"
        instance.write_text(json.dumps(doc))
        result = check_jsonschema(CUSTOM_RESOURCES[doc["apiVersion"], doc["kind"]], instance)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_validators_refuse_a_misspelled_field(tmp_path: Path) -> None:
    """Both checks bite: a field Kubernetes or KEDA does not know fails them."""
    overlay = render("example-overlay")
    deployment = copy.deepcopy(overlay.one("Deployment", API))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbes"] = {}
    scaled = copy.deepcopy(overlay.one("ScaledObject", API))
    scaled["spec"]["minReplicas"] = 2
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    (tmp_path / "scaledobject.json").write_text(json.dumps(scaled))

    assert kubernetes_validate(tmp_path / "deployment.yaml").returncode != 0
    schema = CUSTOM_RESOURCES["keda.sh/v1alpha1", "ScaledObject"]
    assert check_jsonschema(schema, tmp_path / "scaledobject.json").returncode != 0


def test_the_vendored_schemas_name_their_source_and_licence() -> None:
    notice = (SCHEMAS / "README.md").read_text()

    assert "datreeio/CRDs-catalog" in notice
    assert "MIT" in (SCHEMAS / "LICENSE").read_text()
    for schema in CUSTOM_RESOURCES.values():
        assert schema.name in notice


# -- the rules every Deployment keeps -------------------------------------------------------------


def deployment_problems(deployment: Doc) -> list[str]:
    """What keeps ``deployment`` from being probed, bounded and locked down; empty when nothing."""
    pod = deployment["spec"]["template"]["spec"]
    pod_security = pod.get("securityContext", {})
    problems = []
    if pod_security.get("runAsNonRoot") is not True:
        problems.append("pod: runAsNonRoot is not true")
    if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod: seccompProfile is not RuntimeDefault")
    for container in pod["containers"]:
        name = container["name"]
        for probe in ("readinessProbe", "livenessProbe"):
            if "httpGet" not in container.get(probe, {}):
                problems.append(f"{name}: no HTTP {probe}")
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(bound, {}):
                    problems.append(f"{name}: no {resource} {bound}")
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: privilege escalation is not refused")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: the root filesystem is writable")
        if security.get("privileged", False):
            problems.append(f"{name}: privileged")
        if security.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities are not all dropped")
        if security.get("runAsUser", pod_security.get("runAsUser", 0)) == 0:
            problems.append(f"{name}: runs as uid 0")
    return problems


def test_every_deployment_is_probed_bounded_and_locked_down(rendered: Rendered) -> None:
    deployments = rendered.of_kind("Deployment")

    assert {d["metadata"]["name"] for d in deployments} == {API, MODEL}
    assert {d["metadata"]["name"]: deployment_problems(d) for d in deployments} == {API: [], MODEL: []}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("containers", 0, "readinessProbe"), "no HTTP readinessProbe"),
        (("containers", 0, "livenessProbe"), "no HTTP livenessProbe"),
        (("containers", 0, "resources", "limits"), "no memory limits"),
        (("containers", 0, "resources", "requests"), "no cpu requests"),
        (("securityContext", "runAsNonRoot"), "runAsNonRoot is not true"),
        (("containers", 0, "securityContext", "allowPrivilegeEscalation"), "privilege escalation"),
        (("containers", 0, "securityContext", "readOnlyRootFilesystem"), "root filesystem is writable"),
    ],
)
def test_the_rules_catch_a_deployment_that_breaks_them(path: tuple[str | int, ...], expected: str) -> None:
    deployment = copy.deepcopy(render("base").one("Deployment", API))
    parent: Any = deployment["spec"]["template"]["spec"]
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]

    assert any(expected in problem for problem in deployment_problems(deployment))


def test_probes_are_the_health_endpoints_and_ping(rendered: Rendered) -> None:
    probes = {}
    for name in (API, MODEL):
        (container,) = rendered.one("Deployment", name)["spec"]["template"]["spec"]["containers"]
        ports = {p["name"] for p in container["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] in ports
            probes[name, probe] = container[probe]["httpGet"]["path"]

    assert probes == {
        (API, "startupProbe"): "/api/v1/health",
        (API, "livenessProbe"): "/api/v1/health",
        (API, "readinessProbe"): "/api/v1/health/ready",
        (MODEL, "startupProbe"): "/ping",
        (MODEL, "livenessProbe"): "/ping",
        (MODEL, "readinessProbe"): "/ping",
    }


def test_each_pod_runs_one_worker_of_the_dockerfile_images(rendered: Rendered) -> None:
    for name, image in IMAGES.items():
        (container,) = rendered.one("Deployment", name)["spec"]["template"]["spec"]["containers"]
        repository = container["image"].rsplit(":", 1)[0]
        assert repository.rsplit("/", 1)[-1] == image
    (model,) = rendered.one("Deployment", MODEL)["spec"]["template"]["spec"]["containers"]
    args = model["args"]
    assert args[:3] == ["mlflow", "models", "serve"]
    assert args[args.index("-w") + 1] == "1"
    # The facade image's own command, `python -m facade`, runs one uvicorn worker.
    (api,) = rendered.one("Deployment", API)["spec"]["template"]["spec"]["containers"]
    assert "command" not in api
    assert "args" not in api


# -- the topology -----------------------------------------------------------------------------


def _selects(selector: Doc, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def pod_labels(rendered: Rendered, name: str) -> dict[str, str]:
    labels: dict[str, str] = rendered.one("Deployment", name)["spec"]["template"]["metadata"]["labels"]
    return labels


def test_only_the_facade_reaches_the_scoring_server(rendered: Rendered) -> None:
    api, model = pod_labels(rendered, API), pod_labels(rendered, MODEL)
    policies = rendered.of_kind("NetworkPolicy")
    on_model = [p for p in policies if _selects(p["spec"]["podSelector"], model)]

    assert any("ingress" not in p["spec"] and "Ingress" in p["spec"]["policyTypes"] for p in on_model)
    sources = [source for p in on_model for rule in p["spec"].get("ingress", []) for source in rule["from"]]
    assert sources, "the facade must be allowed in"
    for source in sources:
        assert set(source) == {"podSelector"}, "only pods of this namespace, selected by label"
        assert _selects(source["podSelector"], api)
        assert not _selects(source["podSelector"], model)


def test_only_the_facade_is_exposed(rendered: Rendered) -> None:
    services = {s["metadata"]["name"]: s for s in rendered.of_kind("Service")}

    assert set(services) == {API, MODEL}
    assert {s["spec"].get("type", "ClusterIP") for s in services.values()} == {"ClusterIP"}
    backends = {
        path["backend"]["service"]["name"]
        for ingress in rendered.of_kind("Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends <= {API}
    api_policies = [
        p
        for p in rendered.of_kind("NetworkPolicy")
        if _selects(p["spec"]["podSelector"], pod_labels(rendered, API))
    ]
    opened = [rule for p in api_policies for rule in p["spec"].get("ingress", [])]
    assert [rule["ports"] for rule in opened] == [[{"protocol": "TCP", "port": 8000}]]


def test_selectors_and_targets_find_their_pods(rendered: Rendered) -> None:
    for name in (API, MODEL):
        labels = pod_labels(rendered, name)
        assert _selects(rendered.one("Deployment", name)["spec"]["selector"], labels)
        service = rendered.one("Service", name)
        assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
        assert _selects(rendered.one("PodDisruptionBudget", name)["spec"]["selector"], labels)
    autoscalers = rendered.of_kind("HorizontalPodAutoscaler") + rendered.of_kind("ScaledObject")
    targets = sorted(a["spec"]["scaleTargetRef"]["name"] for a in autoscalers)
    assert targets == [API, MODEL], "each Deployment has exactly one autoscaler"
    monitor = rendered.one("ServiceMonitor", API)
    api_service = rendered.one("Service", API)
    assert _selects(monitor["spec"]["selector"], api_service["metadata"]["labels"])
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [
        p["name"] for p in api_service["spec"]["ports"]
    ]
    assert [e["path"] for e in monitor["spec"]["endpoints"]] == ["/metrics"]


def settings(rendered: Rendered) -> dict[str, str]:
    (config,) = rendered.of_kind("ConfigMap")
    data: dict[str, str] = config["data"]
    return data


def test_settings_are_facade_settings_pointing_at_the_services(rendered: Rendered) -> None:
    data = settings(rendered)
    assert set(data) - EXTERNAL_SETTINGS <= set(Settings.model_fields), "a misspelt setting is ignored"
    Settings.model_validate({k: v for k, v in data.items() if k not in EXTERNAL_SETTINGS})
    scoring = urlsplit(data["SCORING_URL"])
    model_service = rendered.one("Service", MODEL)
    assert scoring.hostname == model_service["metadata"]["name"]
    assert scoring.port == model_service["spec"]["ports"][0]["port"]
    assert urlsplit(data["MLFLOW_TRACKING_URI"]).scheme in {"http", "https"}
    assert urlsplit(data["MLFLOW_BACKEND_STORE_URI"]).password is None, "passwords belong in a Secret"
    for name in (API, MODEL):
        (container,) = rendered.one("Deployment", name)["spec"]["template"]["spec"]["containers"]
        config_maps = [s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s]
        assert config_maps == [rendered.of_kind("ConfigMap")[0]["metadata"]["name"]]


def test_the_api_keys_file_is_mounted_from_a_secret(rendered: Rendered) -> None:
    pod = rendered.one("Deployment", API)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    keys_file = Path(next(e["value"] for e in container["env"] if e["name"] == "API_KEYS_FILE"))
    mounts = {Path(m["mountPath"]): m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    assert keys_file.parent in mounts
    volume = volumes[mounts[keys_file.parent]]
    assert volume["secret"]["secretName"] == "credit-score-api-keys"
    assert not rendered.of_kind("Secret"), "key values never live in the repository"


def test_shutdown_drains_before_the_pod_is_killed(rendered: Rendered) -> None:
    data = settings(rendered)
    pod = rendered.one("Deployment", API)["spec"]["template"]["spec"]
    readiness = pod["containers"][0]["readinessProbe"]
    drain, grace = float(data["SHUTDOWN_DRAIN_SECONDS"]), float(data["SHUTDOWN_GRACE_SECONDS"])

    assert drain >= readiness["periodSeconds"], "the Service must see the pod unready before it stops"
    assert pod["terminationGracePeriodSeconds"] > drain + grace
