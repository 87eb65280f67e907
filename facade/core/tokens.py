"""Bearer tokens: OAuth2 client-credentials JWTs verified with PyJWT against the identity provider's keys.

The keys come from a JWKS URL (fetched with the app's own httpx client, cached, fetched again when
a token names an unknown ``kid``, at most once per interval) or from one PEM public key file. Only
the asymmetric algorithms configured are accepted, each bound to the key it belongs to, so
``alg: none`` and an HMAC token "signed" with the public key are refused before any signature is
checked. Nothing here logs or repeats a token: a refusal carries a reason and a fixed description.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

logger = logging.getLogger(__name__)

# NB: asymmetric only: with an HMAC algorithm allowed, a token "signed" with the public key (which
# is public) would verify. `none` is not an algorithm here at all.
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
# NB: a JWKS document is a few kilobytes; anything much larger is not one.
MAX_JWKS_BYTES = 256 * 1024
# NB: the subject becomes the client's name in logs, rate-limit keys and decision records.
MAX_SUBJECT_LENGTH = 128

TokenFailure = Literal[
    "malformed", "algorithm", "unknown_kid", "bad_signature", "expired", "not_yet_valid", "audience",
    "issuer", "claims",
]  # fmt: skip


class TokenRejected(Exception):
    """A token that does not verify: why (a bounded reason) and a description safe to show the caller."""

    def __init__(self, reason: TokenFailure, description: str) -> None:
        super().__init__(description)
        self.reason: TokenFailure = reason
        self.description = description


class KeysUnavailable(Exception):
    """The identity provider's keys cannot be had (never fetched, and the JWKS URL fails)."""


@dataclass(frozen=True)
class TokenPolicy:
    """What a token must satisfy besides its signature."""

    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    leeway_seconds: float


@dataclass(frozen=True)
class VerifiedToken:
    subject: str
    scopes: frozenset[str]


class SigningKeys(Protocol):
    async def key_for(self, kid: str | None) -> jwt.PyJWK: ...


def _usable(jwk: Mapping[str, Any], algorithms: tuple[str, ...]) -> jwt.PyJWK | None:
    """The JWK as a PyJWK bound to its algorithm, or None when it is not a signing key we accept."""
    if jwk.get("use", "sig") != "sig":
        return None
    try:
        key = jwt.PyJWK(dict(jwk))
    except jwt.PyJWTError:
        return None
    return key if key.algorithm_name in algorithms else None


class JwksKeys:
    """The identity provider's signing keys from its JWKS URL, cached for ``cache_seconds``.

    An unknown ``kid`` triggers one fetch, but never more than one per ``min_refresh_seconds``
    (failed attempts included), so that a stream of tokens with made-up key ids cannot make the
    facade hammer the identity provider. While a fetch fails the last keys fetched stay in use.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        algorithms: tuple[str, ...],
        cache_seconds: float,
        min_refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._url = url
        self._algorithms = algorithms
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] | None = None
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        if self._keys is None or self._clock() - self._fetched_at >= self._cache_seconds:
            await self.refresh()
        key = self._lookup(kid)
        if key is None:
            await self.refresh()
            key = self._lookup(kid)
        if key is None:
            raise TokenRejected(
                "unknown_kid", "The token's key id is not one of the identity provider's keys."
            )
        return key

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        keys = self._keys
        if keys is None:
            raise KeysUnavailable("the identity provider's keys could not be fetched")
        if kid is None and len(keys) == 1:
            # NB: a token without a kid is acceptable only when the set leaves no choice.
            return next(iter(keys.values()))
        return keys.get(kid) if kid is not None else None

    async def refresh(self) -> None:
        """Fetch the key set unless an attempt was made less than ``min_refresh_seconds`` ago."""
        async with self._lock:
            # NB: checked under the lock: concurrent requests with an unknown kid share one fetch.
            if self._clock() - self._attempted_at < self._min_refresh_seconds:
                return
            self._attempted_at = self._clock()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                logger.warning("cannot fetch the JWKS (%s); keeping %s", type(exc).__name__,
                               "the last keys" if self._keys is not None else "no keys")  # fmt: skip
                return
            self._keys, self._fetched_at = keys, self._clock()

    async def _fetch(self) -> dict[str | None, jwt.PyJWK]:
        response = await self._http.get(self._url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        entries = response.json()["keys"]
        if not isinstance(entries, list):
            raise TypeError("JWKS keys is not a list")
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in entries:
            if isinstance(entry, dict) and (key := _usable(entry, self._algorithms)) is not None:
                keys[entry.get("kid")] = key
        return keys


class StaticKey:
    """One public key from a PEM file, bound to the first configured algorithm its type can use."""

    def __init__(self, pem: bytes, algorithms: tuple[str, ...]) -> None:
        self._key = static_key(pem, algorithms)

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        return self._key


def static_key(pem: bytes, algorithms: tuple[str, ...]) -> jwt.PyJWK:
    """The PEM public key as a PyJWK; ValueError when it is not an RSA or EC public key we can use."""
    public_key = load_pem_public_key(pem)
    if isinstance(public_key, rsa.RSAPublicKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        candidates = [alg for alg in algorithms if alg[:2] in ("RS", "PS")]
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        size = {"secp256r1": "256", "secp384r1": "384", "secp521r1": "512"}.get(public_key.curve.name)
        candidates = [alg for alg in algorithms if alg == f"ES{size}"]
    else:
        raise ValueError("the public key must be an RSA or EC key")
    if not candidates:
        raise ValueError("no configured algorithm can use this public key")
    return jwt.PyJWK(jwk, algorithm=candidates[0])


class TokenVerifier:
    """Verifies a bearer JWT: its algorithm, key, signature, issuer, audience, times, subject and scopes."""

    def __init__(self, keys: SigningKeys, policy: TokenPolicy) -> None:
        self.keys = keys
        self.policy = policy

    async def verify(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("malformed", "The bearer token is not a well-formed JWT.") from None
        algorithm = header.get("alg")
        if algorithm not in self.policy.algorithms:
            allowed = ", ".join(self.policy.algorithms)
            raise TokenRejected("algorithm", f"The token's algorithm is not accepted (accepted: {allowed}).")
        kid = header.get("kid")
        key = await self.keys.key_for(kid if isinstance(kid, str) else None)
        claims = self._decode(token, key, algorithm)
        return VerifiedToken(subject=_subject(claims), scopes=_scopes(claims))

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=self.policy.audience,
                issuer=self.policy.issuer,
                leeway=self.policy.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("expired", "The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("not_yet_valid", "The token is not valid yet.") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("audience", "The token is not meant for this API (audience).") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected(
                "issuer", "The token was not issued by the trusted identity provider."
            ) from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("bad_signature", "The token's signature does not verify.") from None
        except jwt.InvalidAlgorithmError:
            raise TokenRejected("algorithm", "The token's algorithm does not match its key.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected("claims", f"The token lacks the {exc.claim} claim.") from None
        except jwt.PyJWTError:
            raise TokenRejected("malformed", "The bearer token is not a well-formed JWT.") from None


def _subject(claims: Mapping[str, Any]) -> str:
    subject = claims["sub"]
    if (
        not isinstance(subject, str)
        or not 0 < len(subject) <= MAX_SUBJECT_LENGTH
        or not all("\x21" <= char <= "\x7e" for char in subject)
    ):
        raise TokenRejected(
            "claims", f"The token's sub claim must be 1 to {MAX_SUBJECT_LENGTH} printable ASCII characters."
        )
    return subject


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    # NB: RFC 8693 and RFC 9068 say a space-separated string; a list is tolerated.
    scope = claims.get("scope", "")
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list) and all(isinstance(item, str) for item in scope):
        return frozenset(scope)
    raise TokenRejected("claims", "The token's scope claim must be a space-separated string.")
