"""Fixtures for the facade tests: explicit settings, respx mocks of both upstreams, a lifespan-run client."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import respx
import stamina
from fastapi.testclient import TestClient

from facade.core.config import Settings, get_settings
from facade.main import create_app
from tests.facade.facade_fakes import (
    RUN_BODY,
    SCORING_URL,
    TRACKING_URI,
    fake_model,
    run_artifacts,
    search_versions,
)
from tests.figures import record, write_summary


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come only from each test, never from the machine's environment."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def retries_without_waiting() -> Iterator[None]:
    """Retries happen as configured (capped at 10 attempts) but without their backoff sleeps."""
    stamina.set_testing(True, attempts=10, cap=True)
    yield
    stamina.set_testing(False)


@pytest.fixture
def settings() -> Settings:
    return Settings(SCORING_URL=SCORING_URL, MLFLOW_TRACKING_URI=TRACKING_URI, MAX_BATCH_SIZE=5)


@pytest.fixture
def upstream() -> Iterator[respx.MockRouter]:
    """Both upstreams mocked with named routes: ping, invocations, search, run, artifact."""
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{SCORING_URL}/ping", name="ping").respond(200, text="\n")
        router.post(f"{SCORING_URL}/invocations", name="invocations").mock(side_effect=fake_model())
        router.get(f"{TRACKING_URI}/api/2.0/mlflow/model-versions/search", name="search").mock(
            side_effect=search_versions
        )
        router.get(f"{TRACKING_URI}/api/2.0/mlflow/runs/get", name="run").respond(200, json=RUN_BODY)
        router.get(f"{TRACKING_URI}/get-artifact", name="artifact").mock(side_effect=run_artifacts)
        yield router


@pytest.fixture
def client(settings: Settings, upstream: respx.MockRouter) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Report a measured figure (printed in the "measured figures" section of the summary)."""
    return lambda name, value: record(request.config, name, value)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    write_summary(terminalreporter)
