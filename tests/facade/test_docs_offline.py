"""/docs and /redoc work offline: a real headless Chromium, with no network but loopback, renders both.

The facade is served by uvicorn on a free loopback port; Chromium resolves no host but 127.0.0.1,
so a page that needed a CDN would stay blank, as FastAPI's default docs page does here (the
control). Screenshots of both pages are kept under the test's tmp_path, whose path the run's
"measured figures" print.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from facade.core.config import Settings
from facade.main import create_app

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="chromium not installed (Debian: chromium; .ci/run installs it)",
    ),
]

# NB: run as root (CI), so no sandbox; a fresh profile, nothing fetched in the background, and no
# host resolved but loopback: the pages get only what the facade serves.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1280,1600",
    # NB: lets the page's scripts fetch /openapi.json and render before the DOM is dumped.
    "--virtual-time-budget=15000",
)
PREDICT_PATHS = ("/api/v1/predict", "/api/v1/predict/batch")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def serve() -> Iterator[Callable[[FastAPI], str]]:
    """Serve an app with uvicorn on a free loopback port, in a thread; stopped when the test ends."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: FastAPI) -> str:
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def chromium(url: str, profile: Path, *action: str) -> str:
    """Run headless Chromium on ``url`` with ``action`` (--dump-dom or --screenshot=...); its stdout."""
    result = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def facade_url(serve: Callable[[FastAPI], str]) -> str:
    # NB: the docs call no upstream; these ports have nothing listening.
    return serve(
        create_app(Settings(SCORING_URL="http://127.0.0.1:9", MLFLOW_TRACKING_URI="http://127.0.0.1:9"))
    )


def test_swagger_ui_shows_the_predict_operations_without_a_network(
    facade_url: str, tmp_path: Path, figure: Callable[[str, str], None]
) -> None:
    dom = chromium(f"{facade_url}/docs", tmp_path / "profile-dom", "--dump-dom")
    screenshot = tmp_path / "docs.png"
    chromium(f"{facade_url}/docs", tmp_path / "profile-shot", f"--screenshot={screenshot}")

    for path in PREDICT_PATHS:
        assert f'class="opblock-summary-path" data-path="{path}"' in dom, path
    assert "Credit Score API" in dom
    assert screenshot.stat().st_size > 10_000
    figure("docs screenshot (Swagger UI, offline)", str(screenshot))


def test_redoc_renders_every_operation_without_a_network(
    facade_url: str, tmp_path: Path, figure: Callable[[str, str], None]
) -> None:
    dom = chromium(f"{facade_url}/redoc", tmp_path / "profile-dom", "--dump-dom")
    screenshot = tmp_path / "redoc.png"
    chromium(f"{facade_url}/redoc", tmp_path / "profile-shot", f"--screenshot={screenshot}")

    for operation in ("predict_api_v1_predict_post", "predict_batch_api_v1_predict_batch_post"):
        assert f'data-section-id="tag/predict/operation/{operation}"' in dom, operation
    assert "Something went wrong" not in dom
    assert screenshot.stat().st_size > 10_000
    figure("redoc screenshot (ReDoc, offline)", str(screenshot))


def test_the_control_a_cdn_docs_page_stays_blank_here(
    serve: Callable[[FastAPI], str], tmp_path: Path
) -> None:
    """FastAPI's default /docs loads Swagger UI from a CDN: with no network it renders nothing."""
    cdn_app = FastAPI(title="CDN docs")

    @cdn_app.post("/api/v1/predict")
    async def predict() -> None: ...

    dom = chromium(f"{serve(cdn_app)}/docs", tmp_path / "profile", "--dump-dom")

    assert "cdn.jsdelivr.net" in dom
    assert "opblock-summary-path" not in dom
