"""OAuth2 bearer tokens: JWTs checked against a real JWKS served by a local identity provider.

The identity provider's keys are made in the test; the facade fetches its JWKS over loopback with
its own httpx client. Every broken token gets a 401 (or a 403 for a missing scope), never a 5xx,
and no token appears in an answer or a log line.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import ValidationError

from facade.core.config import Settings
from facade.core.logs import JsonFormatter
from facade.core.security import unnamed_key
from facade.main import create_app
from facade.security import SCOPE_MODEL_READ, SCOPE_PREDICT
from tests.facade.facade_fakes import APPROVED
from tests.facade.identity_provider import (
    AUDIENCE,
    ISSUER,
    TOKEN_URL,
    IdentityProvider,
    hmac_with_public_key,
    mint,
    public_pem,
    rsa_key,
    unsigned,
)
from tests.pki import issue, make_ca

API_KEY = "k3y-0f-the-batch-job-7c1d2e"


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider().start()
    try:
        yield provider
    finally:
        provider.stop()


def token_settings(settings: Settings, **extra: Any) -> Settings:
    return Settings(
        **{
            **settings.model_dump(include={"SCORING_URL", "MLFLOW_TRACKING_URI", "MAX_BATCH_SIZE"}),
            "OAUTH_ISSUER": ISSUER,
            "OAUTH_AUDIENCE": AUDIENCE,
            "OAUTH_TOKEN_URL": TOKEN_URL,
            **extra,
        }
    )


@pytest.fixture
def app_for(
    settings: Settings, upstream: respx.MockRouter, idp: IdentityProvider
) -> Iterator[Callable[..., TestClient]]:
    """A started app whose tokens come from ``idp`` (extra settings as keyword arguments)."""
    upstream.route(url__startswith=idp.jwks_url).pass_through()
    clients: list[TestClient] = []

    def start(**extra: Any) -> TestClient:
        client = TestClient(create_app(token_settings(settings, OAUTH_JWKS_URL=idp.jwks_url, **extra)))
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(app_for: Callable[..., TestClient]) -> TestClient:
    return app_for()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reason_count(reason: str) -> float:
    return REGISTRY.get_sample_value("credit_auth_failures_total", {"reason": reason}) or 0.0


def test_a_valid_token_of_either_algorithm_is_accepted(api: TestClient, idp: IdentityProvider) -> None:
    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(idp.token("rsa-1"))).status_code == 200
    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(idp.token("ec-1"))).status_code == 200
    assert api.get("/api/v1/model/info", headers=bearer(idp.token("ec-1"))).status_code == 200


def test_a_small_clock_skew_is_tolerated(api: TestClient, idp: IdentityProvider) -> None:
    now = int(time.time())
    expired_a_moment_ago = idp.token(exp=now - 10)
    issued_a_moment_ahead = idp.token(iat=now + 10, nbf=now + 10)

    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(expired_a_moment_ago)).status_code == 200
    assert (
        api.post("/api/v1/predict", json=APPROVED, headers=bearer(issued_a_moment_ahead)).status_code == 200
    )


BAD_TOKENS: dict[str, tuple[Callable[[IdentityProvider], str], str]] = {
    "expired": (lambda idp: idp.token(exp=int(time.time()) - 120), "expired"),
    "not-yet-valid": (lambda idp: idp.token(nbf=int(time.time()) + 300), "not_yet_valid"),
    "issued-in-the-future": (lambda idp: idp.token(iat=int(time.time()) + 300), "not_yet_valid"),
    "wrong-audience": (lambda idp: idp.token(aud="another-api"), "audience"),
    "wrong-issuer": (lambda idp: idp.token(iss="https://evil.example/"), "issuer"),
    "alg-none": (lambda idp: unsigned("rsa-1"), "algorithm"),
    "hmac-with-the-public-key": (lambda idp: hmac_with_public_key(idp.keys["rsa-1"], "rsa-1"), "algorithm"),
    "alg-not-the-keys": (lambda idp: mint(idp.keys["rsa-1"], "rsa-1", algorithm="RS512"), "algorithm"),
    "unknown-kid": (lambda idp: mint(rsa_key(), "rsa-unknown"), "unknown_kid"),
    "wrong-key": (lambda idp: mint(rsa_key(), "rsa-1"), "bad_signature"),
    "tampered": (lambda idp: _tampered(idp.token()), "bad_signature"),
    "no-subject": (lambda idp: idp.token(sub=None), "claims"),
    "no-expiry": (lambda idp: idp.token(exp=None), "claims"),
    "subject-with-spaces": (lambda idp: idp.token(sub="Robert'); DROP TABLE"), "claims"),
    "not-a-jwt": (lambda idp: "not-a-jwt-at-all", "malformed"),
    "garbage-segments": (lambda idp: "eyJhbGciOi.eyJzdWIi.c2ln", "malformed"),
}


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    # NB: the same claims but another subject: the signature no longer covers them.
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_bad_token_is_refused_with_401_invalid_token(
    api: TestClient, idp: IdentityProvider, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    make, reason = BAD_TOKENS[case]
    token = make(idp)
    before = reason_count(reason)

    response = api.post("/api/v1/predict", json=APPROVED, headers=bearer(token))

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/unauthorized")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="credit-score", error="invalid_token"')
    assert reason_count(reason) == before + 1
    # NB: neither the token nor its signature anywhere: the answer, its headers, any log line.
    everything = response.text + json.dumps(dict(response.headers))
    everything += "\n".join(JsonFormatter().format(record) for record in caplog.records)
    for part in {token, *token.split(".")} - {""}:
        assert part not in everything


def test_a_token_without_the_routes_scope_gets_403(api: TestClient, idp: IdentityProvider) -> None:
    reader = idp.token(scope=SCOPE_MODEL_READ)

    refused = api.post("/api/v1/predict", json=APPROVED, headers=bearer(reader))

    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/insufficient-scope")
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert f'scope="{SCOPE_PREDICT}"' in refused.headers["www-authenticate"]
    assert api.get("/api/v1/model/info", headers=bearer(reader)).status_code == 200
    assert api.get("/api/v1/model/info", headers=bearer(idp.token(scope=None))).status_code == 403


def test_no_token_gets_401_with_a_bearer_challenge(api: TestClient) -> None:
    response = api.post("/api/v1/predict", json=APPROVED)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="credit-score"'


def test_the_subject_names_the_client_in_the_access_log(
    api: TestClient, idp: IdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    api.post("/api/v1/predict", json=APPROVED, headers=bearer(idp.token(sub="loan-origination")))

    (line,) = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "facade.access"]
    assert line["client"] == "loan-origination"


def test_a_new_key_is_fetched_once_and_made_up_kids_cannot_hammer_the_provider(
    app_for: Callable[..., TestClient], idp: IdentityProvider
) -> None:
    interval = 3
    api = app_for(OAUTH_JWKS_MIN_REFRESH_SECONDS=interval)
    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(idp.token())).status_code == 200
    forger = rsa_key()
    forged = [mint(forger, f"made-up-{n}") for n in range(20)]
    idp.keys["rsa-2"] = rsa_key()
    rotated = idp.token("rsa-2")
    # NB: within the interval of the fetch at startup, a token signed with the new key is refused:
    # that is the price of the bound (at most one fetch per interval).
    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(rotated)).status_code == 401
    time.sleep(interval + 0.2)
    fetched = idp.fetches

    # After the interval, the first token signed with the new key makes the facade fetch once.
    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(rotated)).status_code == 200
    assert idp.fetches == fetched + 1
    # A stream of made-up key ids right after: refused, without another fetch.
    for token in forged:
        assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(token)).status_code == 401
    assert idp.fetches == fetched + 1


def test_while_the_provider_is_down_the_last_keys_keep_working(
    app_for: Callable[..., TestClient], idp: IdentityProvider
) -> None:
    api = app_for(OAUTH_JWKS_MIN_REFRESH_SECONDS=1)
    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(idp.token())).status_code == 200
    idp.available = False
    time.sleep(1.1)

    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(idp.token("ec-1"))).status_code == 200
    assert (
        api.post("/api/v1/predict", json=APPROVED, headers=bearer(mint(rsa_key(), "rsa-9"))).status_code
        == 401
    )


def test_without_any_key_from_the_provider_a_token_gets_503_not_401(
    app_for: Callable[..., TestClient], idp: IdentityProvider
) -> None:
    idp.available = False
    api = app_for(OAUTH_JWKS_MIN_REFRESH_SECONDS=1)
    time.sleep(1.1)

    response = api.post("/api/v1/predict", json=APPROVED, headers=bearer(idp.token()))

    assert response.status_code == 503
    assert response.json()["type"].endswith("/credentials-unverifiable")
    assert int(response.headers["retry-after"]) >= 1
    idp.available = True
    time.sleep(1.1)
    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(idp.token())).status_code == 200


def test_a_pem_public_key_file_instead_of_a_jwks(
    settings: Settings, upstream: respx.MockRouter, tmp_path: Path
) -> None:
    key = rsa_key()
    (tmp_path / "idp.pem").write_bytes(public_pem(key))
    configured = token_settings(settings, OAUTH_PUBLIC_KEY_FILE=str(tmp_path / "idp.pem"))

    with TestClient(create_app(configured)) as api:
        signed = mint(key, None)
        assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(signed)).status_code == 200
        forged = mint(rsa_key(), None)
        assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(forged)).status_code == 401
        confused = hmac_with_public_key(key, "any")
        assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(confused)).status_code == 401


def test_a_jwks_over_https_with_a_private_ca(
    settings: Settings, upstream: respx.MockRouter, tmp_path: Path
) -> None:
    ca = make_ca(tmp_path, "private-ca")
    server = issue(ca, tmp_path, "idp", server=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(server.cert_file, server.key_file)
    provider = IdentityProvider(tls=tls).start()
    upstream.route(url__startswith=provider.jwks_url).pass_through()
    try:
        configured = token_settings(
            settings, OAUTH_JWKS_URL=provider.jwks_url, OAUTH_JWKS_CA_FILE=str(ca.cert_file)
        )
        with TestClient(create_app(configured)) as api:
            ok = api.post("/api/v1/predict", json=APPROVED, headers=bearer(provider.token()))
        assert ok.status_code == 200
        # Without the CA the provider's certificate is not trusted: no keys, so 503, never a pass.
        untrusted = token_settings(settings, OAUTH_JWKS_URL=provider.jwks_url)
        with TestClient(create_app(untrusted)) as api:
            refused = api.post("/api/v1/predict", json=APPROVED, headers=bearer(provider.token()))
        assert refused.status_code == 503
    finally:
        provider.stop()


def test_keys_and_tokens_together(app_for: Callable[..., TestClient], idp: IdentityProvider) -> None:
    api = app_for(API_KEYS=API_KEY)

    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(idp.token())).status_code == 200
    assert api.post("/api/v1/predict", json=APPROVED, headers={"X-API-Key": API_KEY}).status_code == 200
    assert api.post("/api/v1/predict", json=APPROVED, headers=bearer(API_KEY)).status_code == 200
    missing = api.post("/api/v1/predict", json=APPROVED)
    assert missing.headers["www-authenticate"] == (
        'ApiKey realm="credit-score", header="X-API-Key", Bearer realm="credit-score"'
    )


def test_openapi_declares_the_client_credentials_flow_beside_the_key_schemes(
    app_for: Callable[..., TestClient],
) -> None:
    schema = app_for(API_KEYS=API_KEY).get("/openapi.json").json()

    schemes = schema["components"]["securitySchemes"]
    assert set(schemes) == {"APIKeyHeader", "HTTPBearer", "OAuth2ClientCredentials"}
    flow = schemes["OAuth2ClientCredentials"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == TOKEN_URL
    assert set(flow["scopes"]) == {"credit:predict", "credit:model:read", "credit:decisions:read"}
    assert schema["paths"]["/api/v1/predict"]["post"]["security"] == [
        {"APIKeyHeader": []},
        {"HTTPBearer": []},
        {"OAuth2ClientCredentials": [SCOPE_PREDICT]},
    ]
    assert {"OAuth2ClientCredentials": [SCOPE_MODEL_READ]} in schema["paths"]["/api/v1/model/card"]["get"][
        "security"
    ]
    assert "security" not in schema["paths"]["/api/v1/health"]["get"]


def test_openapi_has_no_oauth2_scheme_without_tokens(settings: Settings, upstream: respx.MockRouter) -> None:
    keyed = settings.model_copy(update={"_api_keys": (unnamed_key(API_KEY),)})
    with TestClient(create_app(keyed)) as client:
        schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]

    assert "OAuth2ClientCredentials" not in schemes


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OAUTH_JWKS_URL": "http://idp.example/jwks"}, r"https URL \(http only to a loopback address\)"),
        ({"OAUTH_JWKS_URL": "https://idp.example/jwks", "OAUTH_ISSUER": ""}, "need OAUTH_ISSUER"),
        ({"OAUTH_JWKS_URL": "https://idp.example/jwks", "OAUTH_TOKEN_URL": ""}, "need OAUTH_TOKEN_URL"),
        (
            {"OAUTH_JWKS_URL": "https://idp.example/jwks", "OAUTH_ALGORITHMS": "RS256,HS256"},
            "OAUTH_ALGORITHMS",
        ),
        ({"OAUTH_JWKS_URL": "https://idp.example/jwks", "OAUTH_ALGORITHMS": "none"}, "OAUTH_ALGORITHMS"),
        ({"OAUTH_JWKS_URL": "https://idp.example/jwks", "OAUTH_PUBLIC_KEY_FILE": "/x.pem"}, "not both"),
        ({"OAUTH_PUBLIC_KEY_FILE": "/nonexistent/idp.pem"}, "OAUTH_PUBLIC_KEY_FILE cannot be read"),
    ],
    ids=["plain-http", "no-issuer", "no-token-url", "hmac", "none", "both-sources", "missing-pem"],
)
def test_unsafe_token_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in {
        "OAUTH_ISSUER": ISSUER,
        "OAUTH_AUDIENCE": AUDIENCE,
        "OAUTH_TOKEN_URL": TOKEN_URL,
        **env,
    }.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=message):
        Settings()


def test_a_private_key_is_refused_as_the_public_key_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    private = rsa_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "key.pem").write_bytes(private)
    for name, value in {
        "OAUTH_PUBLIC_KEY_FILE": str(tmp_path / "key.pem"),
        "OAUTH_ISSUER": ISSUER,
        "OAUTH_AUDIENCE": AUDIENCE,
        "OAUTH_TOKEN_URL": TOKEN_URL,
    }.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match="must hold a PEM public key") as caught:
        Settings()
    assert "PRIVATE KEY" not in str(caught.value)
