"""The one-hop limit of ``make bench``: one Python ASGI server scoring with the pyfunc's fast path.

What our API's work costs with no second HTTP hop, no FastAPI and no MLflow scoring server:
uvicorn (httptools and uvloop, as the facade runs), the JSON body, the applicant schema's rules,
the fast forest walk and the pyfunc's own decision and reason codes. ``POST /predict`` takes one
application and ``POST /predict/batch`` ``{"applications": [...]}``, as the facade does. Started
by the benchmark from the project's venv with the champion's downloaded model folder in
``BENCH_MODEL_DIR``; it listens on ``HOST``:``PORT``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_code.fast import FastPipeline
from model_code.pyfunc import decide, principal_reasons
from model_code.schema import CATEGORICAL_FEATURES, FEATURES, FEATURES_BY_NAME, NUMERIC_FEATURES
from model_code.validation import Applicants
from scripts.bench_peers.common import MODEL_DIR_ENV

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

_CODES = {
    name: {category: code for code, category in enumerate(FEATURES_BY_NAME[name].categories)}
    for name in CATEGORICAL_FEATURES
}


def violations(record: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (field, rule) ``record`` breaks: the applicant schema's rules, as the facade applies them."""
    problems = [(f.name, "is required") for f in FEATURES if f.name not in record]
    problems += [(name, "is not an applicant field") for name in record if name not in FEATURES_BY_NAME]
    problems += [
        (name, rule)
        for name, value in record.items()
        if name in FEATURES_BY_NAME and (rule := FEATURES_BY_NAME[name].violation(value)) is not None
    ]
    return problems


class InvalidApplications(ValueError):
    """The (row, field, rule) triples a request breaks (never the submitted values)."""


@dataclass(frozen=True)
class Scorer:
    """The pyfunc's fast path and decision threshold, called directly."""

    fast: FastPipeline
    threshold: float

    @classmethod
    def load(cls, model_dir: str) -> Scorer:
        """Load the model folder with MLflow's own loader, so the pipeline is vetted as when served."""
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(model_dir).unwrap_python_model()
        return cls(model.fast, float(model.threshold))

    def score(self, records: list[Any]) -> list[dict[str, Any]]:
        problems = [
            f"row {i}: {name} {rule}"
            for i, record in enumerate(records)
            for name, rule in (
                violations(record) if isinstance(record, dict) else [("row", "must be an object")]
            )
        ]
        if problems or not records:
            raise InvalidApplications("; ".join(problems) or "applications must not be empty")
        numeric = np.array([[float(r[name]) for name in NUMERIC_FEATURES] for r in records], dtype=np.float64)
        codes = np.array(
            [[_CODES[name][r[name]] for name in CATEGORICAL_FEATURES] for r in records], dtype=np.int64
        )
        explanation = self.fast.explain(Applicants(numeric=numeric, codes=codes))
        columns = decide(explanation.risk, self.threshold)
        names = list(columns)
        rows = zip(*(columns[name].tolist() for name in names), strict=True)
        reasons = principal_reasons(explanation.contributions)
        return [
            {**dict(zip(names, row, strict=True)), "reasons": r} for row, r in zip(rows, reasons, strict=True)
        ]


def create_app(scorer: Scorer) -> ASGIApp:
    """The ASGI app: two POST routes and GET /health, answers as JSON, errors as problem+json."""

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"])
        if route == ("GET", "/health"):
            await _respond(send, 200, {"status": "ok"})
            return
        if route not in {("POST", "/predict"), ("POST", "/predict/batch")}:
            await _problem(send, 404, "no such route")
            return
        try:
            payload = json.loads(await _body(receive))
        except ValueError:
            await _problem(send, 400, "the body must be JSON")
            return
        single = route[1] == "/predict"
        records = [payload] if single else payload.get("applications") if isinstance(payload, dict) else None
        if not isinstance(records, list):
            await _problem(send, 400, "applications must be a list")
            return
        try:
            rows = scorer.score(records)
        except InvalidApplications as exc:
            await _problem(send, 400, str(exc))
            return
        await _respond(send, 200, rows[0] if single else {"predictions": rows, "count": len(rows)})

    return app


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _problem(send: Send, status: int, detail: str) -> None:
    await _respond(send, status, {"status": status, "detail": detail}, "application/problem+json")


async def _respond(send: Send, status: int, body: object, content_type: str = "application/json") -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def main() -> None:
    import uvicorn

    app = create_app(Scorer.load(os.environ[MODEL_DIR_ENV]))
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
