"""A stand-in identity provider for the token tests: signing keys made in the test, a real JWKS endpoint.

``IdentityProvider`` serves ``GET /jwks`` on a free 127.0.0.1 port from a background thread (over
HTTPS when given a TLS context), counts the fetches, and mints tokens with its keys, including the
broken ones an attacker would send (``alg: none``, HMAC keyed with the public key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.credit-score.example/realms/bank"
AUDIENCE = "credit-score-api"
TOKEN_URL = "https://idp.credit-score.example/realms/bank/protocol/openid-connect/token"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def jwk(key: PrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        entry: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        entry["alg"] = "RS256"
    else:
        entry = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        entry["alg"] = "ES256"
    return {**entry, "kid": kid, "use": "sig"}


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid client-credentials token's claims, with ``overrides`` (None removes a claim)."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "scoring-app",
        "scope": "credit:predict credit:model:read",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def mint(key: PrivateKey, kid: str | None, algorithm: str | None = None, **overrides: Any) -> str:
    algorithm = algorithm or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**overrides), key, algorithm=algorithm, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(kid: str, **overrides: Any) -> str:
    """An ``alg: none`` token: header and claims, no signature."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{_b64(json.dumps(claims(**overrides)).encode())}."


def hmac_with_public_key(key: PrivateKey, kid: str, **overrides: Any) -> str:
    """The algorithm-confusion attack: HS256 "signed" with the public key's PEM as the secret.

    NB: made by hand: PyJWT itself refuses to use a PEM key as an HMAC secret.
    """
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims(**overrides)).encode())}"
    signature = hmac.new(public_pem(key), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


class IdentityProvider:
    """Serves its keys' JWKS at ``/jwks`` from ``start()`` until ``stop()``."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.keys: dict[str, PrivateKey] = {"rsa-1": rsa_key(), "ec-1": ec_key()}
        self.fetches = 0
        self.available = True
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, name="jwks", daemon=True)

    @property
    def jwks_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}/jwks"

    def start(self) -> IdentityProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def token(self, kid: str = "rsa-1", **overrides: Any) -> str:
        return mint(self.keys[kid], kid, **overrides)

    def _document(self) -> dict[str, Any]:
        return {"keys": [jwk(key, kid) for kid, key in self.keys.items()]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with provider._lock:
                    provider.fetches += 1
                if not provider.available or self.path != "/jwks":
                    self.send_response(503 if self.path == "/jwks" else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(provider._document()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
