"""A tiny stand-in for the scoring server and the model registry, with a chosen delay per prediction.

Used where the test is about the facade (overload, shutdown, the load-test tool) and a real
model would only add noise: it answers ``/ping``, ``/invocations`` (one record per row, after
``delay`` seconds), the registry's version search and run lookup, all on one 127.0.0.1 port.
It counts the predictions it is serving at once, so tests can see what reached it.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

RUN_ID = "0123456789abcdef0123456789abcdef"


class _Server(ThreadingHTTPServer):
    # NB: the default backlog of 5 would drop SYNs under a burst and add 1 s retransmits.
    request_queue_size = 256
    daemon_threads = True


class StubUpstream:
    """Serves in a background thread from ``start()`` until ``stop()``."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.predictions = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="stub-upstream", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StubUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _score(self, body: bytes) -> dict[str, Any]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            rows = json.loads(body)["dataframe_split"]["data"]
        finally:
            with self._lock:
                self.in_flight -= 1
                self.predictions += 1
        record = {
            "prediction": "APPROVED",
            "approval_probability": 0.9,
            "rejection_probability": 0.1,
            "risk_score": 0.1,
            "confidence": 0.9,
            "credit_score": 550,
            "reasons": [],
            "model_run_id": RUN_ID,
        }
        return {"predictions": [record for _ in rows]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # NB: keep-alive, as the real servers do

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/ping":
                    self._answer(200, {})
                elif path == "/api/2.0/mlflow/model-versions/search":
                    self._answer(
                        200, {"model_versions": [{"name": "credit-score", "version": "1", "run_id": RUN_ID}]}
                    )
                elif path == "/api/2.0/mlflow/runs/get":
                    params = [{"key": "decision_threshold", "value": "0.5"}]
                    self._answer(200, {"run": {"data": {"metrics": [], "params": params}}})
                else:
                    self._answer(404, {})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if urlsplit(self.path).path != "/invocations":
                    self._answer(404, {})
                    return
                self._answer(200, stub._score(body))

        return Handler
