"""Settings: every knob of the facade, read once from the environment and injected into the app."""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from model_code.tracking import CHAMPION, STAGE_TO_ALIAS

logger = logging.getLogger(__name__)

# NB: a key travels in a header, so printable ASCII without spaces or commas; 16 characters at least
# so that a placeholder such as "changeme" is refused rather than deployed.
API_KEY_PATTERN = re.compile(r"[\x21-\x2b\x2d-\x7e]{16,}")


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
    API_KEYS_FILE: Path | None = Field(default=None, description="A file of API keys, one a line.")

    SHUTDOWN_DRAIN_SECONDS: float = Field(
        default=0.0, ge=0, le=60, description="After SIGTERM, serve this long with readiness 503 first."
    )
    SHUTDOWN_GRACE_SECONDS: int = Field(
        default=8, ge=1, le=120, description="Then wait this long at most for in-flight requests."
    )

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    _api_keys: tuple[str, ...] = PrivateAttr(default=())

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

    @field_validator("MODEL_NAME")
    @classmethod
    def _quotable_name(cls, value: str) -> str:
        # NB: the name goes inside a quoted registry search filter.
        if not value.strip() or "'" in value or '"' in value:
            raise ValueError("must be a non-empty registered model name without quotes")
        return value

    @field_validator("API_KEYS_FILE", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _load_api_keys(self) -> Self:
        # NB: messages name the source and the rule, never a key.
        keys = [k.strip() for k in self.API_KEYS.get_secret_value().split(",")] if self.API_KEYS else []
        if self.API_KEYS_FILE is not None:
            try:
                lines = self.API_KEYS_FILE.read_text().splitlines()
            except OSError as exc:
                raise ValueError(f"API_KEYS_FILE cannot be read ({type(exc).__name__})") from None
            from_file = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
            if not from_file:
                raise ValueError("API_KEYS_FILE holds no key (one key a line, # starts a comment)")
            keys += from_file
        keys = [key for key in keys if key]
        if any(not API_KEY_PATTERN.fullmatch(key) for key in keys):
            raise ValueError(
                "every API key must be at least 16 printable ASCII characters without spaces or commas"
            )
        self._api_keys = tuple(dict.fromkeys(keys))
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
    def api_keys(self) -> tuple[str, ...]:
        """The accepted API keys from API_KEYS and API_KEYS_FILE; empty when keys are off."""
        return self._api_keys

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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
