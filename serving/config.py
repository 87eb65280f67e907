"""Settings of the serving supervisor, read once from the environment (each field from its variable)."""

from __future__ import annotations

from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from model_code.tracking import CHALLENGER, CHAMPION


class Settings(BaseSettings):
    """Where the registry is, which aliases to follow, how often, and where to listen."""

    model_config = SettingsConfigDict(case_sensitive=True, hide_input_in_errors=True)

    # NB: required: resolving models:/ without it silently creates an empty SQLite store, and the
    # supervisor reads the registry over REST.
    MLFLOW_TRACKING_URI: str
    MODEL_NAME: str = "credit-score"
    MODEL_ALIAS: str = CHAMPION
    SHADOW_SAMPLE_RATE: float = Field(
        default=0.0, ge=0, le=1, description="Above 0, @challenger is served too, for the facade's shadow."
    )

    ROLLOUT_POLL_SECONDS: float = Field(
        default=10.0, gt=0, le=3600, description="How often aliases are read."
    )
    ROLLOUT_START_TIMEOUT_SECONDS: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Longest a new server may take to load and answer.",
    )
    ROLLOUT_DRAIN_SECONDS: float = Field(
        default=30.0, ge=0, le=3600, description="Longest an old server is kept for its users after a switch."
    )
    ROLLOUT_RETRY_SECONDS: float = Field(
        default=300.0, ge=0, le=86400, description="A version that failed is tried again after this long."
    )

    SCORING_WORKERS: int = Field(
        default=1,
        ge=1,
        le=32,
        description="uvicorn workers of each version's scoring server (each loads the model, about 330 MB).",
    )

    SERVING_HOST: str = Field(default="127.0.0.1", description="Where the scoring servers and ports bind.")
    SERVING_ADVERTISE_HOST: str | None = Field(
        default=None, description="The host name facades reach the scoring servers by (default SERVING_HOST)."
    )
    SCORING_PORT: int = Field(default=5002, ge=1, le=65535, description="The champion's stable raw address.")
    SUPERVISOR_PORT: int = Field(default=5003, ge=1, le=65535, description="State, health and metrics.")

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("MLFLOW_TRACKING_URI")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL of the tracking server, such as http://127.0.0.1:5001")
        return value.rstrip("/")

    @field_validator("MODEL_NAME", "MODEL_ALIAS")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value.strip() or any(c in value for c in "'\"/@"):
            raise ValueError("must be non-empty, without quotes, / or @")
        return value

    @model_validator(mode="after")
    def _ports_differ(self) -> Self:
        if self.SCORING_PORT == self.SUPERVISOR_PORT:
            raise ValueError("SCORING_PORT and SUPERVISOR_PORT must differ")
        return self

    @property
    def aliases(self) -> tuple[str, ...]:
        """The aliases served: the champion's, and @challenger when the facade shadows it."""
        if self.SHADOW_SAMPLE_RATE > 0 and self.MODEL_ALIAS != CHALLENGER:
            return (self.MODEL_ALIAS, CHALLENGER)
        return (self.MODEL_ALIAS,)

    @property
    def advertise_host(self) -> str:
        return self.SERVING_ADVERTISE_HOST or self.SERVING_HOST

    @property
    def local_host(self) -> str:
        """Where this process reaches its own servers: loopback when they bind every interface."""
        return "127.0.0.1" if self.SERVING_HOST in ("0.0.0.0", "") else self.SERVING_HOST
