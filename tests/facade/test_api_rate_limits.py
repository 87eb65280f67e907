"""Per-client rate limits in one process (memory storage): 429 quota-exceeded, Retry-After, RateLimit fields.

The fields are parsed as RFC 9651 structured fields with ``http_sf``, as a client would. Redis
shared by two real facade processes is ``tests/integration/test_rate_limits_redis.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import ValidationError

from facade.core.config import Settings
from facade.core.security import ApiKey
from facade.main import create_app
from facade.security import ALL_SCOPES, SCOPE_MODEL_READ
from tests.facade.facade_fakes import APPROVED
from tests.facade.identity_provider import AUDIENCE, ISSUER, TOKEN_URL, mint, public_pem, rsa_key
from tests.structured_fields import rate_limit_fields

SCORING_KEY = "k3y-0f-the-scoring-app-2f9d1c"
BATCH_KEY = "k3y-0f-the-batch-job-7c1d2e00"
MONITOR_KEY = "k3y-0f-the-monitor-91ab3c0d"
READER_KEY = "k3y-0f-the-model-reader-5e8a"
KEYS = (
    ApiKey("scoring-app", ALL_SCOPES, SCORING_KEY),
    ApiKey("batch-job", ALL_SCOPES, BATCH_KEY),
    ApiKey("monitor", ALL_SCOPES, MONITOR_KEY),
    ApiKey("model-reader", frozenset({SCOPE_MODEL_READ}), READER_KEY),
)


@pytest.fixture
def app_with(settings: Settings, upstream: respx.MockRouter) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def start(keys: tuple[ApiKey, ...] = KEYS, **limits: Any) -> TestClient:
        configured = Settings(**settings.model_dump(include={"SCORING_URL", "MLFLOW_TRACKING_URI"}), **limits)
        client = TestClient(create_app(configured.model_copy(update={"_api_keys": keys})))
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def predict(client: TestClient, key: str | None) -> Any:
    return client.post("/api/v1/predict", json=APPROVED, headers={"X-API-Key": key} if key else {})


def fields(response: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    return rate_limit_fields(response.headers)


def limited(client: str) -> float:
    return REGISTRY.get_sample_value("credit_rate_limited_total", {"client": client}) or 0.0


def test_past_its_quota_a_client_gets_429_quota_exceeded(app_with: Callable[..., TestClient]) -> None:
    api = app_with(RATE_LIMIT="3/minute")
    before = limited("scoring-app")

    answers = [predict(api, SCORING_KEY) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["type"].endswith("/quota-exceeded")
    assert body["status"] == 429
    assert body["violated-policies"] == ["3-per-minute"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert SCORING_KEY not in refused.text
    assert limited("scoring-app") == before + 1


def test_every_answer_carries_the_policy_and_what_is_left(app_with: Callable[..., TestClient]) -> None:
    api = app_with(RATE_LIMIT="3/minute")

    answers = [predict(api, SCORING_KEY) for _ in range(4)]

    for answer in answers:
        policy, _ = fields(answer)
        assert policy == {"3-per-minute": {"q": 3, "w": 60}}
    remaining = [fields(answer)[1]["3-per-minute"]["r"] for answer in answers]
    assert remaining == [2, 1, 0, 0]
    reset = fields(answers[-1])[1]["3-per-minute"]["t"]
    assert 0 < reset <= 60
    # NB: the draft: Retry-After never earlier than the end of the effective window.
    assert int(answers[-1].headers["retry-after"]) >= reset


def test_each_client_has_its_own_quota(app_with: Callable[..., TestClient]) -> None:
    api = app_with(RATE_LIMIT="2/minute")

    assert [predict(api, SCORING_KEY).status_code for _ in range(3)] == [200, 200, 429]
    assert [predict(api, BATCH_KEY).status_code for _ in range(3)] == [200, 200, 429]


def test_per_client_overrides_and_unlimited_clients(app_with: Callable[..., TestClient]) -> None:
    api = app_with(
        RATE_LIMIT="3/minute", RATE_LIMITS_BY_CLIENT={"batch-job": "1/minute", "monitor": "unlimited"}
    )

    assert [predict(api, BATCH_KEY).status_code for _ in range(2)] == [200, 429]
    assert [predict(api, SCORING_KEY).status_code for _ in range(4)] == [200, 200, 200, 429]
    monitor = [predict(api, MONITOR_KEY) for _ in range(10)]
    assert {answer.status_code for answer in monitor} == {200}
    assert "ratelimit" not in monitor[0].headers


def test_windows_are_counted_shortest_first(app_with: Callable[..., TestClient]) -> None:
    """A burst refused by the per-second window does not also use up the per-minute quota."""
    api = app_with(RATE_LIMIT="2/second;5/minute")

    burst = [predict(api, SCORING_KEY) for _ in range(3)]
    assert [a.status_code for a in burst] == [200, 200, 429]
    assert burst[-1].json()["violated-policies"] == ["2-per-second"]
    _, left = fields(burst[-1])
    assert left["2-per-second"]["r"] == 0
    assert left["5-per-minute"]["r"] == 3
    time.sleep(1.1)
    assert [predict(api, SCORING_KEY).status_code for _ in range(2)] == [200, 200]
    time.sleep(1.1)
    last = [predict(api, SCORING_KEY) for _ in range(2)]
    assert [a.status_code for a in last] == [200, 429]
    assert last[-1].json()["violated-policies"] == ["5-per-minute"]


def test_model_routes_share_the_clients_quota(app_with: Callable[..., TestClient]) -> None:
    api = app_with(RATE_LIMIT="2/minute")

    assert api.get("/api/v1/model/info", headers={"X-API-Key": SCORING_KEY}).status_code == 200
    assert predict(api, SCORING_KEY).status_code == 200
    assert api.get("/api/v1/model/card", headers={"X-API-Key": SCORING_KEY}).status_code == 429


def test_refused_credentials_and_scopes_use_no_quota(app_with: Callable[..., TestClient]) -> None:
    api = app_with(RATE_LIMIT="1/minute")

    assert predict(api, None).status_code == 401
    assert predict(api, READER_KEY).status_code == 403
    assert api.get("/api/v1/model/info", headers={"X-API-Key": READER_KEY}).status_code == 200


def test_probes_metrics_and_docs_are_never_limited(app_with: Callable[..., TestClient]) -> None:
    api = app_with(RATE_LIMIT="1/minute")

    for url in ["/api/v1/health", "/api/v1/health/ready", "/metrics", "/openapi.json"]:
        answers = [api.get(url) for _ in range(3)]
        assert {a.status_code for a in answers} == {200}, url
        assert "ratelimit" not in answers[0].headers


def test_without_authentication_clients_are_told_apart_by_address(
    app_with: Callable[..., TestClient],
) -> None:
    api = app_with(keys=(), RATE_LIMIT="2/minute")

    answers = [predict(api, None) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert fields(answers[0])[1]["2-per-minute"]["r"] == 1


def test_unconfigured_clients_share_one_metric_label(
    app_with: Callable[..., TestClient], tmp_path: Path
) -> None:
    """A token subject nobody configured is limited like anyone, but counted as `other`."""
    key = rsa_key()
    (tmp_path / "idp.pem").write_bytes(public_pem(key))
    api = app_with(
        RATE_LIMIT="1/minute",
        OAUTH_PUBLIC_KEY_FILE=str(tmp_path / "idp.pem"),
        OAUTH_ISSUER=ISSUER,
        OAUTH_AUDIENCE=AUDIENCE,
        OAUTH_TOKEN_URL=TOKEN_URL,
    )
    before = limited("other")
    token = {"Authorization": f"Bearer {mint(key, None, sub='unlisted-app')}"}

    assert [api.post("/api/v1/predict", json=APPROVED, headers=token).status_code for _ in range(2)] == [
        200,
        429,
    ]
    assert limited("other") == before + 1
    assert REGISTRY.get_sample_value("credit_rate_limited_total", {"client": "unlisted-app"}) is None


def test_rate_limits_are_off_by_default(app_with: Callable[..., TestClient]) -> None:
    api = app_with()

    answers = [predict(api, SCORING_KEY) for _ in range(20)]

    assert {a.status_code for a in answers} == {200}
    assert "ratelimit" not in answers[0].headers


def test_settings_never_show_the_redis_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_STORAGE_URL", "redis://:s3cret-pa55@redis:6379/0")

    assert "s3cret-pa55" not in repr(Settings())


def test_per_client_limits_come_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT", "50/second;2000/minute")
    monkeypatch.setenv("RATE_LIMITS_BY_CLIENT", '{"batch-job": "10/minute", "monitor": "unlimited"}')

    default, by_client = Settings().rate_limits

    assert default is not None
    assert default.field == '"50-per-second";q=50;w=1, "2000-per-minute";q=2000;w=60'
    assert set(by_client) == {"batch-job", "monitor"}
    assert by_client["monitor"] is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RATE_LIMIT": "lots"}, "RATE_LIMIT must be limits such as 50/second;2000/minute"),
        ({"RATE_LIMIT": "0/second"}, "positive amount"),
        ({"RATE_LIMITS_BY_CLIENT": '{"bad name": "1/second"}'}, "a client name must be"),
        ({"RATE_LIMITS_BY_CLIENT": '{"app": "often"}'}, "or unlimited"),
        ({"RATE_LIMIT_STORAGE_URL": "memcached://127.0.0.1:11211"}, "memory:// or redis://"),
    ],
    ids=["not-a-limit", "zero", "bad-client-name", "bad-override", "unsupported-storage"],
)
def test_bad_rate_limit_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=message):
        Settings()
