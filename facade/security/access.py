"""Access control of one app: who is calling (key, token or certificate), may it, and how much is left.

``AccessControl`` is built once per app in its lifespan (``from_settings``) and asked by
``facade.security.dependencies.require_scope`` on every protected request. Credentials are tried
in a fixed order: an ``X-API-Key`` header; then ``Authorization: Bearer`` (a JWT when tokens are
configured, else an API key); then the client certificate of mutual TLS. Credentials that are
presented and fail are refused; they never fall through to the next kind.
"""

from __future__ import annotations

import logging
import re
import ssl

import httpx
from starlette.requests import Request

from facade.core.config import Settings
from facade.core.ratelimit import RateLimiter, Verdict
from facade.core.security import CLIENT_NAME_PATTERN, CLIENT_NAME_RULE, ApiKeys, Principal
from facade.core.tls import client_common_name
from facade.core.tokens import (
    JwksKeys,
    KeysUnavailable,
    SigningKeys,
    StaticKey,
    TokenPolicy,
    TokenRejected,
    TokenVerifier,
)
from facade.errors import CredentialsUnverifiable, InsufficientScope, QuotaExceeded, Unauthorized
from facade.security.metrics import (
    AUTH_FAILURES,
    OTHER_CLIENT,
    RATE_LIMIT_STORAGE_ERRORS,
    RATE_LIMITED,
    AuthFailure,
)
from facade.security.scopes import ALL_SCOPES

logger = logging.getLogger(__name__)

REALM = "credit-score"
ANONYMOUS = Principal(name="anonymous", kind="anonymous", scopes=ALL_SCOPES)
# NB: three base64url segments: what a JWS in compact form looks like (an `alg: none` token has an
# empty third one). API keys that look like this are taken for tokens when tokens are on.
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class AccessControl:
    """Authenticates a request to a ``Principal``, checks its scope, and counts it against its rate limit."""

    def __init__(
        self,
        keys: ApiKeys,
        tokens: TokenVerifier | None = None,
        certificates: dict[str, frozenset[str]] | None = None,
        mutual_tls: bool = False,
        limiter: RateLimiter | None = None,
        known_clients: frozenset[str] = frozenset(),
    ) -> None:
        self.keys = keys
        self.tokens = tokens
        self.certificates = certificates
        self.mutual_tls = mutual_tls
        self.limiter = limiter
        self.known_clients = known_clients | keys.names | {ANONYMOUS.name}
        if self.limiter is not None:
            for client in (*self.known_clients, OTHER_CLIENT):
                RATE_LIMITED.labels(client)

    @property
    def enabled(self) -> bool:
        return self.keys.enabled or self.tokens is not None or self.mutual_tls

    # --- who ------------------------------------------------------------------------------------

    async def authenticate(self, request: Request, api_key: str | None, bearer: str | None) -> Principal:
        """The caller of ``request``; 401 (or 503 when a token cannot be checked now) otherwise."""
        if not self.enabled:
            return ANONYMOUS
        if api_key is not None and self.keys.enabled:
            return self._key(api_key)
        if bearer is not None:
            if self.tokens is not None and (_JWT_SHAPE.fullmatch(bearer) or not self.keys.enabled):
                return await self._token(bearer)
            if self.keys.enabled:
                return self._key(bearer)
        if self.mutual_tls and (name := client_common_name(request.scope)) is not None:
            return self._certificate(name)
        raise self._refuse("missing", "Send credentials: " + self._accepted() + ".")

    def _key(self, presented: str) -> Principal:
        key = self.keys.match(presented)
        if key is None:
            raise self._refuse("unknown_key", "The API key is not one of the configured keys.")
        return Principal(
            name=key.name, kind="api_key", scopes=key.scopes if key.scopes is not None else ALL_SCOPES
        )

    async def _token(self, token: str) -> Principal:
        assert self.tokens is not None
        try:
            verified = await self.tokens.verify(token)
        except TokenRejected as exc:
            raise self._refuse(exc.reason, exc.description, error="invalid_token") from None
        except KeysUnavailable:
            AUTH_FAILURES.labels("keys_unavailable").inc()
            raise CredentialsUnverifiable(
                "The identity provider's signing keys cannot be fetched; retry shortly."
            ) from None
        return Principal(name=verified.subject, kind="token", scopes=verified.scopes)

    def _certificate(self, name: str) -> Principal:
        if not CLIENT_NAME_PATTERN.fullmatch(name):
            raise self._refuse(
                "certificate_name", f"The client certificate's common name must be {CLIENT_NAME_RULE}."
            )
        scopes = ALL_SCOPES if self.certificates is None else self.certificates.get(name, frozenset())
        return Principal(name=name, kind="certificate", scopes=scopes)

    # --- may it ---------------------------------------------------------------------------------

    def authorize(self, principal: Principal, scope: str) -> None:
        """403 unless ``principal`` holds ``scope``."""
        if scope not in principal.scopes:
            AUTH_FAILURES.labels("insufficient_scope").inc()
            raise InsufficientScope(scope, self.challenge(error="insufficient_scope", scope=scope))

    # --- how much -------------------------------------------------------------------------------

    async def limit(self, request: Request, principal: Principal) -> Verdict | None:
        """Count the request against the client's policy; 429 when a window is used up.

        The client is the principal's name, or the client's address when nobody authenticates.
        Returns the verdict (whose RateLimit fields go on the answer), or None when unlimited.
        """
        if self.limiter is None:
            return None
        policy = self.limiter.policy_for(principal.name)
        if policy is None:
            return None
        if principal.kind == "anonymous":
            key = f"address:{request.client.host if request.client else 'unknown'}"
        else:
            key = f"client:{principal.name}"
        verdict = await self.limiter.hit(key, policy)
        if not verdict.allowed:
            label = principal.name if principal.name in self.known_clients else OTHER_CLIENT
            RATE_LIMITED.labels(label).inc()
        return verdict

    @staticmethod
    def refused(verdict: Verdict) -> QuotaExceeded:
        return QuotaExceeded(verdict.retry_after or 1, verdict.violated)

    # --- answers --------------------------------------------------------------------------------

    def _refuse(self, reason: AuthFailure, detail: str, error: str | None = None) -> Unauthorized:
        AUTH_FAILURES.labels(reason).inc()
        return Unauthorized(detail, self.challenge(error=error, description=detail if error else None))

    def _accepted(self) -> str:
        kinds = []
        if self.keys.enabled:
            kinds.append("an API key in the X-API-Key header or as a bearer token")
        if self.tokens is not None:
            kinds.append("an OAuth2 access token as a bearer token")
        if self.mutual_tls:
            kinds.append("a client certificate")
        return ", or ".join(kinds)

    def challenge(
        self, error: str | None = None, description: str | None = None, scope: str | None = None
    ) -> str:
        """The WWW-Authenticate value: every scheme accepted, with RFC 6750's error on the bearer one."""
        challenges = []
        if self.keys.enabled:
            challenges.append(f'ApiKey realm="{REALM}", header="X-API-Key"')
        if self.keys.enabled or self.tokens is not None:
            bearer = f'Bearer realm="{REALM}"'
            if error:
                bearer += f', error="{error}"'
            if description:
                # NB: descriptions are the facade's own fixed sentences, never a token; no quotes in them.
                bearer += f', error_description="{description.replace(chr(34), chr(39))}"'
            if scope:
                bearer += f', scope="{scope}"'
            challenges.append(bearer)
        if not challenges:
            # NB: mutual TLS with optional client certificates and nothing else configured: there is no
            # HTTP authentication scheme for a certificate, but a 401 must name one.
            challenges.append(f'Certificate realm="{REALM}"')
        return ", ".join(challenges)

    async def aclose(self) -> None:
        if self.limiter is not None:
            await self.limiter.aclose()


def check_scopes(settings: Settings) -> None:
    """Refuse, at startup, an API key or certificate client given a scope this API does not have."""
    named: list[tuple[str, frozenset[str] | None]] = [
        (f"API key {key.name!r}", key.scopes) for key in settings.api_keys
    ]
    named += [
        (f"certificate client {name!r}", scopes) for name, scopes in (settings.tls_clients or {}).items()
    ]
    for whose, scopes in named:
        if unknown := sorted((scopes or frozenset()) - ALL_SCOPES):
            known = ", ".join(sorted(ALL_SCOPES))
            raise ValueError(f"{whose} names an unknown scope {unknown[0]!r} (known: {known})")


def jwks_client(settings: Settings) -> httpx.AsyncClient:
    """The app's own client for the JWKS URL: short deadlines, no proxy from the environment."""
    verify: ssl.SSLContext | bool = True
    if settings.OAUTH_JWKS_CA_FILE is not None:
        verify = ssl.create_default_context(cafile=settings.OAUTH_JWKS_CA_FILE)
    # NB: trust_env=False, as for the upstreams: an HTTPS_PROXY meant for other traffic must not see
    # (or be able to swap) the keys that decide who may call.
    return httpx.AsyncClient(timeout=httpx.Timeout(3.0, connect=2.0), verify=verify, trust_env=False)


def from_settings(settings: Settings, jwks_http: httpx.AsyncClient | None) -> AccessControl:
    """The app's access control; ``jwks_http`` fetches the JWKS (unused with a PEM key or no tokens)."""
    tokens = None
    if settings.tokens_enabled:
        assert settings.OAUTH_ISSUER is not None
        assert settings.OAUTH_AUDIENCE is not None
        keys: SigningKeys
        if settings.OAUTH_JWKS_URL:
            assert jwks_http is not None
            keys = JwksKeys(
                jwks_http,
                settings.OAUTH_JWKS_URL,
                settings.oauth_algorithms,
                settings.OAUTH_JWKS_CACHE_SECONDS,
                settings.OAUTH_JWKS_MIN_REFRESH_SECONDS,
            )
        else:
            assert settings.oauth_public_key is not None
            keys = StaticKey(settings.oauth_public_key, settings.oauth_algorithms)
        policy = TokenPolicy(
            issuer=settings.OAUTH_ISSUER,
            audience=settings.OAUTH_AUDIENCE,
            algorithms=settings.oauth_algorithms,
            leeway_seconds=settings.OAUTH_LEEWAY_SECONDS,
        )
        tokens = TokenVerifier(keys, policy)
    default, by_client = settings.rate_limits
    limiter = None
    if default is not None or any(policy is not None for policy in by_client.values()):
        limiter = RateLimiter(
            settings.RATE_LIMIT_STORAGE_URL.get_secret_value(),
            default,
            by_client,
            on_storage_error=RATE_LIMIT_STORAGE_ERRORS.inc,
        )
    certificates = settings.tls_clients
    return AccessControl(
        ApiKeys(settings.api_keys),
        tokens=tokens,
        certificates=certificates,
        mutual_tls=settings.mutual_tls,
        limiter=limiter,
        known_clients=frozenset(by_client) | frozenset(certificates or {}),
    )
