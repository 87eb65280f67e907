"""How ``make bench`` starts each serving peer and speaks its protocol (the project's venv side).

A ``Protocol`` says where a server takes one application and a batch, how to wrap applicant rows
for it and where its answer keeps each row's probability of default; a ``Launch`` is the command,
environment and readiness URL of one server on a free 127.0.0.1 port.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_code.schema import FEATURES
from scripts.bench_peers.common import BATCHING_ENV, MODEL_DIR_ENV, PIPELINE_ENV, TRUSTED_ENV
from scripts.bench_peers.envs import PeerEnv
from scripts.processes import PROJECT_ROOT

Row = dict[str, Any]


@dataclass(frozen=True)
class Protocol:
    """One server's request and response shapes for a single application and for a batch."""

    path: str
    batch_path: str
    wrap_one: Callable[[Row], object]
    wrap_many: Callable[[list[Row]], object]
    risk_one: Callable[[Any], float]
    risk_many: Callable[[Any], list[float]]


def _mlflow_rows(body: Any) -> list[float]:
    return [float(p["rejection_probability"]) for p in body["predictions"]]


# `mlflow models serve`'s /invocations, split-free records in and out.
MLFLOW = Protocol(
    "/invocations",
    "/invocations",
    lambda row: {"dataframe_records": [row]},
    lambda rows: {"dataframe_records": rows},
    lambda body: _mlflow_rows(body)[0],
    _mlflow_rows,
)

# The facade's public API; the one-hop server takes and answers the same shapes.
FACADE = Protocol(
    "/api/v1/predict",
    "/api/v1/predict/batch",
    lambda row: row,
    lambda rows: {"applications": rows},
    lambda body: float(body["rejection_probability"]),
    lambda body: [float(p["rejection_probability"]) for p in body["predictions"]],
)
ONE_HOP = Protocol(
    "/predict", "/predict/batch", FACADE.wrap_one, FACADE.wrap_many, FACADE.risk_one, FACADE.risk_many
)

BENTOML = Protocol(
    "/predict",
    "/predict",
    lambda row: {"applications": [row]},
    lambda rows: {"applications": rows},
    lambda body: float(body[0]),
    lambda body: [float(p) for p in body],
)


def v2_request(rows: list[Row]) -> dict[str, object]:
    """An Open Inference Protocol (V2) request decoded by MLServer's pandas codec: a column an input."""
    inputs = []
    for feature in FEATURES:
        column = [row[feature.name] for row in rows]
        spec: dict[str, object] = {"name": feature.name, "shape": [len(rows)], "data": column}
        if feature.kind == "category":
            spec.update(datatype="BYTES", parameters={"content_type": "str"})
        else:
            spec["datatype"] = "INT64" if feature.kind == "integer" else "FP64"
        inputs.append(spec)
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def _v2_risk(body: Any) -> list[float]:
    (output,) = body["outputs"]
    return [float(p) for p in output["data"]]


MLSERVER_MODEL = "credit-score"
MLSERVER = Protocol(
    f"/v2/models/{MLSERVER_MODEL}/infer",
    f"/v2/models/{MLSERVER_MODEL}/infer",
    lambda row: v2_request([row]),
    v2_request,
    lambda body: _v2_risk(body)[0],
    _v2_risk,
)


@dataclass(frozen=True)
class VettedPipeline:
    """The champion's skops file and the types the pyfunc's trust rules allowed in it."""

    path: Path
    trusted: tuple[str, ...]

    def env(self) -> dict[str, str]:
        return {PIPELINE_ENV: str(self.path), TRUSTED_ENV: json.dumps(list(self.trusted))}


@dataclass(frozen=True)
class Launch:
    """A server's command line, extra environment and readiness path."""

    argv: list[str]
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)


def _peer_env(pipeline: VettedPipeline) -> dict[str, str]:
    # NB: the peers import scripts.bench_peers and, through skops, model_code.preprocessing's
    # functions from this checkout; nothing else of the project is installed in their venvs.
    return {"PYTHONPATH": str(PROJECT_ROOT), "DO_NOT_TRACK": "1", **pipeline.env()}


def bentoml(env: PeerEnv, port: int, pipeline: VettedPipeline, home: Path, batching: bool) -> Launch:
    """``bentoml serve`` of the service class, one worker, on 127.0.0.1."""
    argv = [
        env.bin("bentoml"), "serve", "scripts.bench_peers.bento_service:CreditScore",
        "--host", "127.0.0.1", "--port", str(port), "--working-dir", str(PROJECT_ROOT),
    ]  # fmt: skip
    extra = {
        "BENTOML_HOME": str(home),
        # NB: BentoML reports usage to its vendor unless told not to; the bench talks to loopback only.
        "BENTOML_DO_NOT_TRACK": "True",
        BATCHING_ENV: "1" if batching else "0",
    }
    return Launch(argv, "/readyz", {**_peer_env(pipeline), **extra})


def mlserver(env: PeerEnv, ports: tuple[int, int, int], pipeline: VettedPipeline, folder: Path) -> Launch:
    """``mlserver start`` of a folder with the server's and the model's settings, one inference worker."""
    http, grpc, metrics = ports
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": http,
        "grpc_port": grpc,
        "metrics_port": metrics,
        "parallel_workers": 1,
    }
    model = {
        "name": MLSERVER_MODEL,
        "implementation": "scripts.bench_peers.mlserver_runtime.SkopsPipelineRuntime",
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "model-settings.json").write_text(json.dumps(model))
    return Launch(
        [env.bin("mlserver"), "start", str(folder)],
        f"/v2/models/{MLSERVER_MODEL}/ready",
        _peer_env(pipeline),
    )


def one_hop(python: str, port: int, model_dir: Path) -> Launch:
    """The single-hop limit server, from the project's venv."""
    return Launch(
        [python, "-m", "scripts.bench_peers.one_hop"],
        "/health",
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            MODEL_DIR_ENV: str(model_dir),
            "PYTHONPATH": str(PROJECT_ROOT),
        },
    )
