"""API keys: off unless configured; then predict, batch and model info need one, probes stay open.

Keys have names and scopes (``name:scope,scope:key`` lines); a bare key has every scope.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import respx
from fastapi import Depends, Request
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import ValidationError

from facade.core.config import Settings
from facade.core.logs import JsonFormatter
from facade.core.security import ApiKey, ApiKeys, unnamed_key
from facade.main import create_app
from facade.security import ALL_SCOPES, SCOPE_MODEL_READ, SCOPE_PREDICT, Principal, require_scope
from tests.facade.facade_fakes import APPROVED

KEY = "k3y-0f-the-scoring-app-2f9d1c"
OTHER_KEY = "an0ther-valid-key-7d1e9a0b"
PROTECTED = [
    ("post", "/api/v1/predict", {"json": APPROVED}),
    ("post", "/api/v1/predict/batch", {"json": {"applications": [APPROVED]}}),
    ("get", "/api/v1/model/info", {}),
    ("get", "/api/v1/model/card", {}),
]
OPEN = ["/api/v1/health", "/api/v1/health/ready", "/metrics", "/docs", "/redoc", "/openapi.json"]


READER_KEY = "r3ader-0f-model-cards-5e8a"


@pytest.fixture
def keyed(settings: Settings, upstream: respx.MockRouter) -> Iterator[TestClient]:
    keys = (unnamed_key(KEY), unnamed_key(OTHER_KEY))
    with TestClient(create_app(settings.model_copy(update={"_api_keys": keys}))) as client:
        yield client


@pytest.fixture
def scoped(
    settings: Settings, upstream: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[TestClient]:
    """Two named keys: scoring-app may predict and read the model; model-reader may only read it."""
    secrets = tmp_path / "api_keys"
    secrets.write_text(
        f"# name:scope,scope:key\nscoring-app:{SCOPE_PREDICT}, {SCOPE_MODEL_READ}:{KEY}\n"
        f"model-reader:{SCOPE_MODEL_READ}:{READER_KEY}\n"
    )
    monkeypatch.setenv("API_KEYS_FILE", str(secrets))
    keys = Settings().api_keys
    with TestClient(create_app(settings.model_copy(update={"_api_keys": keys}))) as client:
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
    # NB: RFC 6750: a request without credentials gets no error code.
    assert "error=" not in response.headers["www-authenticate"]


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
        "description": "An API key from API_KEYS or API_KEYS_FILE.",
    }
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    secured = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    }
    assert secured == {(m, u) for m, u, _ in PROTECTED}
    assert schema["paths"]["/api/v1/predict"]["post"]["security"] == [
        {"APIKeyHeader": []},
        {"HTTPBearer": []},
    ]
    # NB: no token is configured, so no OAuth2 scheme is declared.
    assert set(schemes) == {"APIKeyHeader", "HTTPBearer"}


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

    keys = Settings().api_keys
    assert [key.secret for key in keys] == [KEY, OTHER_KEY]
    # NB: the one-key-a-line form has every scope, and a name that is not the key.
    assert all(key.scopes is None and key.name.startswith("key-") and key.name not in KEY for key in keys)


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
    keys = ApiKeys(
        [unnamed_key(KEY), unnamed_key(OTHER_KEY), ApiKey("third", frozenset(), "third-key-xxxxxxxx")]
    )

    assert keys.accepts(KEY)
    assert not keys.accepts("short")
    # NB: all three keys each time, even after a match, over digests of one length.
    assert compared == [64] * 6


# --- named keys and scopes ------------------------------------------------------------------------


def test_a_named_key_reaches_the_routes_its_scopes_allow(scoped: TestClient) -> None:
    reader = {"X-API-Key": READER_KEY}

    assert scoped.get("/api/v1/model/info", headers=reader).status_code == 200
    assert scoped.get("/api/v1/model/card", headers=reader).status_code == 200
    refused = scoped.post("/api/v1/predict", json=APPROVED, headers=reader)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/insufficient-scope")
    assert SCOPE_PREDICT in refused.json()["detail"]
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{SCOPE_PREDICT}"' in challenge
    assert READER_KEY not in refused.text
    assert scoped.post("/api/v1/predict", json=APPROVED, headers={"X-API-Key": KEY}).status_code == 200


def test_the_key_name_goes_to_the_access_log_never_the_key(
    scoped: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    scoped.post("/api/v1/predict", json=APPROVED, headers={"Authorization": f"Bearer {KEY}"})
    scoped.get("/api/v1/model/info", headers={"X-API-Key": READER_KEY})
    scoped.post("/api/v1/predict", json=APPROVED, headers={"X-API-Key": READER_KEY})

    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "facade.access"]
    assert [(line["route"], line["status"], line["client"]) for line in lines] == [
        ("/api/v1/predict", 200, "scoring-app"),
        ("/api/v1/model/info", 200, "model-reader"),
        ("/api/v1/predict", 403, "model-reader"),
    ]
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert KEY not in everything
    assert READER_KEY not in everything


def test_a_route_gets_the_principal_and_finds_it_on_the_request(
    settings: Settings, upstream: respx.MockRouter
) -> None:
    """The interface other routes (decision records) build on: require_scope returns the principal."""
    keys = (ApiKey("model-reader", frozenset({SCOPE_MODEL_READ}), READER_KEY),)
    app = create_app(settings.model_copy(update={"_api_keys": keys}))

    @app.get("/whoami")
    async def whoami(
        request: Request, principal: Annotated[Principal, Depends(require_scope(SCOPE_MODEL_READ))]
    ) -> dict[str, object]:
        return {
            "name": principal.name,
            "kind": principal.kind,
            "scopes": sorted(principal.scopes),
            "on_request": request.state.principal is principal,
        }

    with TestClient(app) as client:
        answer = client.get("/whoami", headers={"X-API-Key": READER_KEY}).json()
        assert client.get("/whoami").status_code == 401

    assert answer == {
        "name": "model-reader",
        "kind": "api_key",
        "scopes": [SCOPE_MODEL_READ],
        "on_request": True,
    }


def test_with_nothing_configured_the_principal_is_anonymous_with_every_scope(
    settings: Settings, upstream: respx.MockRouter
) -> None:
    app = create_app(settings)

    @app.get("/whoami")
    async def whoami(
        principal: Annotated[Principal, Depends(require_scope(SCOPE_PREDICT))],
    ) -> dict[str, object]:
        return {"name": principal.name, "kind": principal.kind, "scopes": sorted(principal.scopes)}

    with TestClient(app) as client:
        answer = client.get("/whoami").json()

    assert answer == {"name": "anonymous", "kind": "anonymous", "scopes": sorted(ALL_SCOPES)}


def test_auth_failures_are_counted_by_reason(scoped: TestClient) -> None:
    def count(reason: str) -> float:
        return REGISTRY.get_sample_value("credit_auth_failures_total", {"reason": reason}) or 0.0

    before = {reason: count(reason) for reason in ("missing", "unknown_key", "insufficient_scope")}
    scoped.post("/api/v1/predict", json=APPROVED)
    scoped.post("/api/v1/predict", json=APPROVED, headers={"X-API-Key": "not-a-configured-key-000"})
    scoped.post("/api/v1/predict", json=APPROVED, headers={"X-API-Key": READER_KEY})

    assert {reason: count(reason) - before[reason] for reason in before} == {
        "missing": 1,
        "unknown_key": 1,
        "insufficient_scope": 1,
    }


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (f"bad name!:{SCOPE_PREDICT}:{KEY}", "line 1: a key's name must be"),
        (f"app::{KEY}", "names no scope"),
        (f"app:Credit Predict:{KEY}", "malformed scope"),
        (f"app:{SCOPE_PREDICT}:short", "at least 16 printable ASCII characters"),
        (f"app:{SCOPE_PREDICT}:{KEY}\nother:{SCOPE_MODEL_READ}:{KEY}", "repeats another key"),
        (f"app:{SCOPE_PREDICT}:{KEY}\napp:{SCOPE_PREDICT}:{OTHER_KEY}", "share a name"),
    ],
    ids=["bad-name", "no-scope", "malformed-scope", "short-key", "same-key-twice", "same-name-twice"],
)
def test_malformed_key_lines_are_refused_without_quoting_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lines: str, message: str
) -> None:
    (tmp_path / "keys").write_text(lines + "\n")
    monkeypatch.setenv("API_KEYS_FILE", str(tmp_path / "keys"))

    with pytest.raises(ValidationError) as caught:
        Settings()

    assert message in str(caught.value)
    assert KEY not in str(caught.value)
    assert OTHER_KEY not in str(caught.value)


def test_a_key_with_a_scope_the_api_lacks_stops_the_start(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "keys").write_text(f"app:credit:everything:{KEY}\n")
    monkeypatch.setenv("API_KEYS_FILE", str(tmp_path / "keys"))
    keys = Settings().api_keys

    with pytest.raises(ValueError, match="API key 'app' names an unknown scope 'credit:everything'"):
        create_app(settings.model_copy(update={"_api_keys": keys}))
