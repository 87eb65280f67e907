"""API keys: off unless configured; then predict, batch and model info need one, probes stay open."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from fastapi.testclient import TestClient
from pydantic import ValidationError

from facade.core.config import Settings
from facade.core.security import ApiKeys
from facade.main import create_app
from tests.facade.facade_fakes import APPROVED

KEY = "k3y-0f-the-scoring-app-2f9d1c"
OTHER_KEY = "an0ther-valid-key-7d1e9a0b"
PROTECTED = [
    ("post", "/api/v1/predict", {"json": APPROVED}),
    ("post", "/api/v1/predict/batch", {"json": {"applications": [APPROVED]}}),
    ("get", "/api/v1/model/info", {}),
    ("get", "/api/v1/model/card", {}),
]
# NB: the decision records' read routes need a key too; tests/facade/test_api_decisions.py calls them.
PROTECTED_DECISIONS = {
    ("get", "/api/v1/decisions"),
    ("get", "/api/v1/decisions/verify"),
    ("get", "/api/v1/decisions/{application_id}"),
}
OPEN = ["/api/v1/health", "/api/v1/health/ready", "/metrics", "/docs", "/redoc", "/openapi.json"]


@pytest.fixture
def keyed(settings: Settings, upstream: respx.MockRouter) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"_api_keys": (KEY, OTHER_KEY)}))) as client:
        yield client


def call(client: TestClient, method: str, url: str, kwargs: dict[str, Any], **headers: str) -> Any:
    return client.request(method, url, headers=headers, **kwargs)


@pytest.mark.parametrize(
    ("method", "url", "kwargs"), PROTECTED, ids=lambda v: str(v) if isinstance(v, str) else ""
)
def test_protected_routes_refuse_a_missing_key(
    keyed: TestClient, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    response = call(keyed, method, url, kwargs)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/unauthorized")
    assert 'header="X-API-Key"' in response.headers["www-authenticate"]
    assert "Bearer" in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("method", "url", "kwargs"), PROTECTED, ids=lambda v: str(v) if isinstance(v, str) else ""
)
def test_protected_routes_accept_a_configured_key(
    keyed: TestClient, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    assert call(keyed, method, url, kwargs, **{"X-API-Key": KEY}).status_code == 200
    assert call(keyed, method, url, kwargs, **{"X-API-Key": OTHER_KEY}).status_code == 200
    assert call(keyed, method, url, kwargs, Authorization=f"Bearer {KEY}").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "wrong-key-of-some-length-000"},
        {"X-API-Key": KEY[:-1]},
        {"X-API-Key": KEY + "x"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer wrong-key-of-some-length"},
    ],
    ids=["unknown", "prefix", "longer", "basic-scheme", "wrong-bearer"],
)
def test_a_wrong_key_is_refused_and_never_echoed(keyed: TestClient, headers: dict[str, str]) -> None:
    response = keyed.post("/api/v1/predict", json=APPROVED, headers=headers)

    assert response.status_code == 401
    for value in headers.values():
        assert value.split()[-1] not in response.text


def test_refused_before_the_body_is_looked_at(keyed: TestClient, upstream: respx.MockRouter) -> None:
    response = keyed.post("/api/v1/predict", content=b"{not json", headers={"content-type": "text/plain"})

    assert response.status_code == 401
    assert not upstream.calls


@pytest.mark.parametrize("url", OPEN)
def test_probes_metrics_and_docs_stay_open(keyed: TestClient, url: str) -> None:
    assert keyed.get(url).status_code == 200


def test_keys_are_off_by_default(client: TestClient) -> None:
    assert client.post("/api/v1/predict", json=APPROVED).status_code == 200
    assert client.get("/api/v1/model/info").status_code == 200


def test_openapi_declares_the_schemes_on_the_protected_routes_only(keyed: TestClient) -> None:
    schema = keyed.get("/openapi.json").json()

    schemes = schema["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "One of the API keys configured in API_KEYS or API_KEYS_FILE.",
    }
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    secured = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    }
    assert secured == {(m, u) for m, u, _ in PROTECTED} | PROTECTED_DECISIONS
    assert schema["paths"]["/api/v1/predict"]["post"]["security"] == [
        {"APIKeyHeader": []},
        {"HTTPBearer": []},
    ]


def test_openapi_declares_no_security_when_keys_are_off(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    assert "securitySchemes" not in schema["components"]
    assert not any(op.get("security") for ops in schema["paths"].values() for op in ops.values())


def test_keys_come_from_the_environment_and_a_secrets_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "api_keys"
    secrets.write_text(f"# one key a line\n\n  {OTHER_KEY}  \n")
    monkeypatch.setenv("API_KEYS", f"{KEY}, {KEY}")
    monkeypatch.setenv("API_KEYS_FILE", str(secrets))

    assert Settings().api_keys == (KEY, OTHER_KEY)


@pytest.mark.parametrize(
    "env",
    [{"API_KEYS": ""}, {"API_KEYS": " , "}, {"API_KEYS_FILE": ""}, {}],
    ids=["empty", "only-commas", "empty-file-variable", "unset"],
)
def test_no_key_configured_means_keys_off(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert Settings().api_keys == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"API_KEYS": "changeme"}, "at least 16 printable ASCII characters"),
        ({"API_KEYS": "a key with spaces in it"}, "at least 16 printable ASCII characters"),
        ({"API_KEYS_FILE": "/nonexistent/api_keys"}, "API_KEYS_FILE cannot be read"),
    ],
    ids=["short", "spaces", "missing-file"],
)
def test_unsafe_keys_are_refused_without_quoting_them(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError) as caught:
        Settings()

    assert message in str(caught.value)
    assert "changeme" not in str(caught.value)
    assert "spaces in it" not in str(caught.value)


def test_a_secrets_file_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("# nothing yet\n")
    monkeypatch.setenv("API_KEYS_FILE", str(tmp_path / "keys"))

    with pytest.raises(ValidationError, match="API_KEYS_FILE holds no key"):
        Settings()


def test_settings_never_show_the_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", KEY)

    assert KEY not in repr(Settings())


def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[int] = []
    real_compare_digest = hmac.compare_digest

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append(len(a) + len(b))
        return real_compare_digest(a, b)

    monkeypatch.setattr("facade.core.security.hmac.compare_digest", compare_digest)
    keys = ApiKeys([KEY, OTHER_KEY, "third-key-xxxxxxxxxxxx"])

    assert keys.accepts(KEY)
    assert not keys.accepts("short")
    # NB: all three keys each time, even after a match, over digests of one length.
    assert compared == [64] * 6
