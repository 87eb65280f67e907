"""Settings: every knob of the facade, read once from the environment and injected into the app."""

from __future__ import annotations

import json
import logging
import ssl
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from facade.core.ratelimit import STORAGE_SCHEMES, Policy, parse_policy
from facade.core.security import (
    API_KEY_PATTERN,
    CLIENT_NAME_PATTERN,
    CLIENT_NAME_RULE,
    SCOPE_PATTERN,
    ApiKey,
    parse_api_key_line,
    unnamed_key,
)
from facade.core.tls import ClientAuth, server_context
from facade.core.tokens import ASYMMETRIC_ALGORITHMS, static_key
from model_code.tracking import CHAMPION, STAGE_TO_ALIAS

logger = logging.getLogger(__name__)

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _http_url(value: str) -> str:
    # NB: the facade talks to its upstreams over HTTP with httpx; a file:, sqlite: or databricks
    # tracking URI would only fail later, on the first request.
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL such as http://127.0.0.1:5001")
    return value.rstrip("/")


class Settings(BaseSettings):
    """The facade's configuration; each field is read from the environment variable of its name."""

    # NB: hide_input_in_errors: a refused setting may be an API key; errors name the field and rule only.
    model_config = SettingsConfigDict(case_sensitive=True, hide_input_in_errors=True)

    APP_NAME: str = "Credit Score API"
    APP_VERSION: str = "0.1.0"
    DEBUG: bool = Field(default=False, description="Log at DEBUG; never shows tracebacks to clients.")
    HOST: str = "127.0.0.1"
    PORT: int = Field(default=8000, ge=1, le=65535)

    MLFLOW_TRACKING_URI: str = "http://127.0.0.1:5001"
    MODEL_NAME: str = "credit-score"
    MODEL_ALIAS: str = CHAMPION
    MODEL_STAGE: str | None = Field(default=None, description="Deprecated: use MODEL_ALIAS.")

    SCORING_URL: str = "http://127.0.0.1:5002"
    SUPERVISOR_URL: str | None = Field(
        default=None, description="The serving supervisor, whose state names the scoring servers to call."
    )
    SUPERVISOR_POLL_SECONDS: float = Field(
        default=1.0, gt=0, le=5, description="How often the supervisor's state is read (and reported to)."
    )
    SHADOW_SAMPLE_RATE: float = Field(
        default=0.0, ge=0, le=1, description="Share of scored applications the challenger scores in shadow."
    )
    SHADOW_QUEUE_SIZE: int = Field(
        default=256, ge=1, le=100_000, description="Sampled applications waiting at most; more are dropped."
    )
    # NB: the scoring server itself gives up after 60 s; every deadline here is well below it.
    UPSTREAM_CONNECT_TIMEOUT: float = Field(default=1.0, gt=0, le=10)
    UPSTREAM_READ_TIMEOUT: float = Field(default=5.0, gt=0, le=30)
    UPSTREAM_POOL_TIMEOUT: float = Field(default=1.0, gt=0, le=10)
    UPSTREAM_RETRY_ATTEMPTS: int = Field(
        default=3, ge=1, le=5, description="Attempts of a call that could not connect (1: no retry)."
    )
    BREAKER_FAILURE_THRESHOLD: int = Field(
        default=5, ge=1, description="Consecutive connection failures that open the circuit."
    )
    BREAKER_COOL_DOWN_SECONDS: float = Field(
        default=2.0, gt=0, le=60, description="How long the circuit stays open before one probe call."
    )

    MAX_BATCH_SIZE: int = Field(default=1000, ge=1)
    MICROBATCH_ENABLED: bool = Field(
        default=True, description="Coalesce concurrent single predictions into one scoring call."
    )
    MICROBATCH_MAX_ROWS: int = Field(default=64, ge=1, le=1000, description="Rows per coalesced call.")
    MICROBATCH_MAX_WAIT_MS: float = Field(
        default=2.0, ge=0, le=100, description="Longest linger to fill a batch while other calls are busy."
    )
    MICROBATCH_MAX_CONCURRENCY: int = Field(
        default=2, ge=1, le=64, description="Coalesced calls to the scoring server at once."
    )
    MAX_IN_FLIGHT: int = Field(default=64, ge=1, description="Predictions answered at once; more get 503.")
    MAX_BODY_BYTES: int = Field(default=2 * 1024 * 1024, ge=1024, description="Largest request body (413).")

    DRIFT_WINDOW_SIZE: int = Field(
        default=1000, ge=1, le=100_000, description="Recent scored applications kept in memory for PSI."
    )
    DRIFT_MIN_SAMPLES: int = Field(
        default=100, ge=1, description="Window length below which the PSI gauges are not exported."
    )

    API_KEYS: SecretStr | None = Field(default=None, description="Comma-separated API keys; unset: keys off.")
    API_KEYS_FILE: Path | None = Field(
        default=None, description="A file of API keys, one a line: name:scope,scope:key, or a bare key."
    )

    OAUTH_JWKS_URL: str | None = Field(default=None, description="The identity provider's JWKS URL.")
    OAUTH_PUBLIC_KEY_FILE: Path | None = Field(
        default=None, description="Or one PEM public key that signs tokens."
    )
    OAUTH_ISSUER: str | None = Field(default=None, description="The iss every token must carry.")
    OAUTH_AUDIENCE: str | None = Field(default=None, description="The aud every token must carry.")
    OAUTH_ALGORITHMS: str = Field(default="RS256,ES256", description="Accepted asymmetric JWT algorithms.")
    OAUTH_LEEWAY_SECONDS: int = Field(
        default=30, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat."
    )
    OAUTH_TOKEN_URL: str | None = Field(default=None, description="Where clients get tokens (OpenAPI).")
    OAUTH_JWKS_CACHE_SECONDS: int = Field(
        default=300, ge=10, le=86_400, description="How long keys are cached."
    )
    OAUTH_JWKS_MIN_REFRESH_SECONDS: int = Field(
        default=30, ge=1, le=3600, description="At most one JWKS fetch per this interval (unknown kid)."
    )
    OAUTH_JWKS_CA_FILE: Path | None = Field(default=None, description="CA bundle for the JWKS URL's TLS.")

    RATE_LIMIT: str | None = Field(
        default=None, description="Every client's limits, e.g. 50/second;2000/minute."
    )
    # NB: NoDecode: read as text and parsed below, so that an empty variable (Compose's default) is {}.
    RATE_LIMITS_BY_CLIENT: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description='JSON: {"client-name": "100/second", "other": "unlimited"}.'
    )
    # NB: secret: a redis:// URL may carry the password.
    RATE_LIMIT_STORAGE_URL: SecretStr = Field(
        default=SecretStr("memory://"), description="memory://, or redis://[:password@]host:port/db."
    )

    TLS_CERT_FILE: Path | None = Field(default=None, description="The server certificate (PEM): serve HTTPS.")
    TLS_KEY_FILE: Path | None = Field(default=None, description="Its private key (PEM, unencrypted).")
    TLS_CLIENT_CA_FILE: Path | None = Field(
        default=None, description="Mutual TLS: the CA of client certificates."
    )
    TLS_CLIENT_AUTH: ClientAuth = Field(default="required", description="Whether every client needs one.")
    TLS_CLIENTS_FILE: Path | None = Field(
        default=None, description="Scopes of certificate clients, one a line: common-name:scope,scope."
    )

    DECISIONS_DATABASE_URL: SecretStr | None = Field(
        default=None,
        description="Where decision records are written (sqlite:///... or postgresql://...); unset: off.",
    )
    DECISION_RETENTION_DAYS: int = Field(
        default=761,
        ge=1,
        le=36_500,
        description="Days a decision record is kept before the purge deletes it.",
    )
    DECISION_PURGE_INTERVAL_SECONDS: float = Field(
        default=3600.0,
        ge=0,
        description="Seconds between background retention purges (0: no background purge).",
    )
    DECISION_WRITE_TIMEOUT_SECONDS: float = Field(
        default=2.0, gt=0, le=30, description="Deadline of one group commit of records (and of a DB connect)."
    )
    DECISIONS_MIGRATE_ON_START: bool = Field(
        default=True, description="Run the records' migrations on start (else refuse to start unmigrated)."
    )

    SHUTDOWN_DRAIN_SECONDS: float = Field(
        default=0.0, ge=0, le=60, description="After SIGTERM, serve this long with readiness 503 first."
    )
    SHUTDOWN_GRACE_SECONDS: int = Field(
        default=8, ge=1, le=120, description="Then wait this long at most for in-flight requests."
    )

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    _api_keys: tuple[ApiKey, ...] = PrivateAttr(default=())
    _tls_clients: dict[str, frozenset[str]] | None = PrivateAttr(default=None)
    _oauth_public_key: bytes | None = PrivateAttr(default=None)

    @field_validator("MLFLOW_TRACKING_URI", "SCORING_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("SUPERVISOR_URL", mode="before")
    @classmethod
    def _optional_http_url(cls, value: object) -> object:
        if value is None or value == "":
            return None
        return _http_url(str(value))

    @field_validator("DECISIONS_DATABASE_URL", mode="before")
    @classmethod
    def _records_database(cls, value: object) -> object:
        # NB: the URL may hold a password: the rule is named, the value never quoted.
        if value is None or value == "":
            return None
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        scheme = text.partition("://")[0].partition("+")[0]
        if scheme not in ("sqlite", "postgresql", "postgres") or "://" not in text:
            raise ValueError("must be a sqlite:///path or postgresql://user:password@host/database URL")
        return text.replace("postgres://", "postgresql://", 1) if scheme == "postgres" else text

    @field_validator("MODEL_NAME")
    @classmethod
    def _quotable_name(cls, value: str) -> str:
        # NB: the name goes inside a quoted registry search filter.
        if not value.strip() or "'" in value or '"' in value:
            raise ValueError("must be a non-empty registered model name without quotes")
        return value

    @field_validator(
        "API_KEYS_FILE",
        "OAUTH_JWKS_URL",
        "OAUTH_PUBLIC_KEY_FILE",
        "OAUTH_ISSUER",
        "OAUTH_AUDIENCE",
        "OAUTH_TOKEN_URL",
        "OAUTH_JWKS_CA_FILE",
        "RATE_LIMIT",
        "TLS_CERT_FILE",
        "TLS_KEY_FILE",
        "TLS_CLIENT_CA_FILE",
        "TLS_CLIENTS_FILE",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # NB: Compose and Kubernetes pass an unset variable as an empty string.
        return None if value == "" else value

    @field_validator("RATE_LIMITS_BY_CLIENT", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return {}
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError('must be a JSON object such as {"batch-job": "10/minute"}') from None

    @model_validator(mode="after")
    def _load_api_keys(self) -> Self:
        # NB: messages name the source, the line and the rule, never a key.
        legacy = [k.strip() for k in self.API_KEYS.get_secret_value().split(",")] if self.API_KEYS else []
        keys = [unnamed_key(key) for key in legacy if key]
        if self.API_KEYS_FILE is not None:
            lines = _secret_lines(self.API_KEYS_FILE, "API_KEYS_FILE")
            if not lines:
                raise ValueError("API_KEYS_FILE holds no key (one key a line, # starts a comment)")
            for number, line in lines:
                try:
                    keys.append(parse_api_key_line(line))
                except ValueError as exc:
                    raise ValueError(f"API_KEYS_FILE line {number}: {exc}") from None
        if any(not API_KEY_PATTERN.fullmatch(key.secret) for key in keys):
            raise ValueError(
                "every API key must be at least 16 printable ASCII characters without spaces or commas"
            )
        unique: dict[str, ApiKey] = {}
        for key in keys:
            # NB: the same key twice (API_KEYS and the file) is one key; two names need two keys.
            if unique.setdefault(key.secret, key) != key:
                raise ValueError(f"API key {key.name!r} repeats another key under another name or scopes")
        names = [key.name for key in unique.values()]
        if len(set(names)) != len(names):
            raise ValueError("two API keys share a name; give each client its own")
        self._api_keys = tuple(unique.values())
        return self

    @model_validator(mode="after")
    def _check_oauth(self) -> Self:
        if self.OAUTH_JWKS_URL and self.OAUTH_PUBLIC_KEY_FILE:
            raise ValueError("set OAUTH_JWKS_URL or OAUTH_PUBLIC_KEY_FILE, not both")
        algorithms = self.oauth_algorithms
        if not algorithms or any(alg not in ASYMMETRIC_ALGORITHMS for alg in algorithms):
            raise ValueError(
                f"OAUTH_ALGORITHMS must be a comma-separated list of {', '.join(ASYMMETRIC_ALGORITHMS)}"
            )
        if not self.tokens_enabled:
            return self
        missing = [
            name for name in ("OAUTH_ISSUER", "OAUTH_AUDIENCE", "OAUTH_TOKEN_URL") if not getattr(self, name)
        ]
        if missing:
            raise ValueError(f"bearer tokens need {', '.join(missing)} as well")
        if self.OAUTH_JWKS_URL:
            # NB: keys fetched over plain HTTP could be swapped on the way; only loopback may skip TLS.
            parts = urlsplit(self.OAUTH_JWKS_URL)
            if not (
                parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)
            ):
                raise ValueError("OAUTH_JWKS_URL must be an https URL (http only to a loopback address)")
        if self.OAUTH_PUBLIC_KEY_FILE is not None:
            pem = _read(self.OAUTH_PUBLIC_KEY_FILE, "OAUTH_PUBLIC_KEY_FILE").encode()
            try:
                static_key(pem, algorithms)
            except ValueError as exc:
                raise ValueError(f"OAUTH_PUBLIC_KEY_FILE must hold a PEM public key: {exc}") from None
            self._oauth_public_key = pem
        return self

    @model_validator(mode="after")
    def _check_rate_limits(self) -> Self:
        if self.RATE_LIMIT is not None:
            try:
                Policy.parse(self.RATE_LIMIT)
            except ValueError as exc:
                raise ValueError(f"RATE_LIMIT {exc}") from None
        for client, text in self.RATE_LIMITS_BY_CLIENT.items():
            if not CLIENT_NAME_PATTERN.fullmatch(client):
                raise ValueError(f"RATE_LIMITS_BY_CLIENT: a client name must be {CLIENT_NAME_RULE}")
            try:
                parse_policy(text)
            except ValueError as exc:
                raise ValueError(f"RATE_LIMITS_BY_CLIENT[{client!r}] {exc}, or unlimited") from None
        scheme = urlsplit(self.RATE_LIMIT_STORAGE_URL.get_secret_value()).scheme
        if scheme not in STORAGE_SCHEMES:
            raise ValueError(
                "RATE_LIMIT_STORAGE_URL must be memory:// or redis://host:port/db (rediss:// for TLS)"
            )
        return self

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        if (self.TLS_CERT_FILE is None) != (self.TLS_KEY_FILE is None):
            raise ValueError("TLS_CERT_FILE and TLS_KEY_FILE go together")
        if self.TLS_CLIENT_CA_FILE is not None and self.TLS_CERT_FILE is None:
            raise ValueError("mutual TLS (TLS_CLIENT_CA_FILE) needs TLS_CERT_FILE and TLS_KEY_FILE")
        if self.TLS_CLIENTS_FILE is not None and self.TLS_CLIENT_CA_FILE is None:
            raise ValueError("TLS_CLIENTS_FILE needs mutual TLS (TLS_CLIENT_CA_FILE)")
        if self.TLS_CERT_FILE is not None and self.TLS_KEY_FILE is not None:
            try:
                server_context(
                    self.TLS_CERT_FILE, self.TLS_KEY_FILE, self.TLS_CLIENT_CA_FILE, self.TLS_CLIENT_AUTH
                )
            except (OSError, ssl.SSLError) as exc:
                # NB: the class only: OpenSSL's message can quote file contents.
                raise ValueError(f"the TLS files cannot be loaded ({type(exc).__name__})") from None
        if self.TLS_CLIENTS_FILE is not None:
            self._tls_clients = {}
            for number, line in _secret_lines(self.TLS_CLIENTS_FILE, "TLS_CLIENTS_FILE"):
                name, _, scopes_text = line.partition(":")
                scopes = frozenset(s.strip() for s in scopes_text.split(",") if s.strip())
                if not CLIENT_NAME_PATTERN.fullmatch(name.strip()) or not all(
                    map(SCOPE_PATTERN.fullmatch, scopes)
                ):
                    raise ValueError(f"TLS_CLIENTS_FILE line {number} must be common-name:scope,scope")
                self._tls_clients[name.strip()] = scopes
        return self

    @model_validator(mode="after")
    def _drift_window_can_fill(self) -> Self:
        # NB: a minimum the window can never reach would silently turn the drift gauges off.
        if self.DRIFT_MIN_SAMPLES > self.DRIFT_WINDOW_SIZE:
            raise ValueError("DRIFT_MIN_SAMPLES must not exceed DRIFT_WINDOW_SIZE")
        return self

    @property
    def log_level(self) -> str:
        """The level of the facade's logs: DEBUG when DEBUG is on, else LOG_LEVEL."""
        return "DEBUG" if self.DEBUG else self.LOG_LEVEL

    @property
    def api_keys(self) -> tuple[ApiKey, ...]:
        """The accepted API keys from API_KEYS and API_KEYS_FILE; empty when keys are off."""
        return self._api_keys

    @property
    def oauth_algorithms(self) -> tuple[str, ...]:
        return tuple(alg.strip() for alg in self.OAUTH_ALGORITHMS.split(",") if alg.strip())

    @property
    def tokens_enabled(self) -> bool:
        """True when bearer JWTs are accepted (a JWKS URL or a public key file is configured)."""
        return bool(self.OAUTH_JWKS_URL or self.OAUTH_PUBLIC_KEY_FILE)

    @property
    def oauth_public_key(self) -> bytes | None:
        """The PEM of OAUTH_PUBLIC_KEY_FILE, read once at startup."""
        return self._oauth_public_key

    @property
    def tls_enabled(self) -> bool:
        return self.TLS_CERT_FILE is not None

    @property
    def mutual_tls(self) -> bool:
        return self.TLS_CLIENT_CA_FILE is not None

    @property
    def tls_clients(self) -> dict[str, frozenset[str]] | None:
        """Scopes by certificate common name (TLS_CLIENTS_FILE); None: every certificate gets every scope."""
        return self._tls_clients

    @property
    def auth_enabled(self) -> bool:
        """True when callers must prove who they are: API keys, bearer tokens or client certificates."""
        return bool(self._api_keys) or self.tokens_enabled or self.mutual_tls

    @property
    def rate_limits(self) -> tuple[Policy | None, dict[str, Policy | None]]:
        """The default policy (None: unlimited) and the per-client ones."""
        default = Policy.parse(self.RATE_LIMIT) if self.RATE_LIMIT else None
        return default, {name: parse_policy(text) for name, text in self.RATE_LIMITS_BY_CLIENT.items()}

    @model_validator(mode="after")
    def _stage_to_alias(self) -> Self:
        if not self.MODEL_STAGE:
            return self
        alias = STAGE_TO_ALIAS.get(self.MODEL_STAGE.lower())
        if alias is None:
            raise ValueError(
                "MODEL_STAGE is deprecated and only accepts Production or Staging; set MODEL_ALIAS instead"
            )
        if "MODEL_ALIAS" in self.model_fields_set:
            logger.warning("MODEL_STAGE is deprecated and ignored: MODEL_ALIAS=%s is set", self.MODEL_ALIAS)
        else:
            logger.warning(
                "MODEL_STAGE=%s is deprecated: using MODEL_ALIAS=%s; set MODEL_ALIAS instead",
                self.MODEL_STAGE,
                alias,
            )
            self.MODEL_ALIAS = alias
        return self


def _read(path: Path, setting: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ValueError(f"{setting} cannot be read ({type(exc).__name__})") from None


def _secret_lines(path: Path, setting: str) -> list[tuple[int, str]]:
    """The non-blank, non-comment lines of a file, with their line numbers."""
    lines = _read(path, setting).splitlines()
    return [
        (n, line.strip())
        for n, line in enumerate(lines, 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
