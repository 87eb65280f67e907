"""Settings: every knob of the facade, read once from the environment and injected into the app."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

# NB: MLflow deprecated registry stages in favour of aliases; training moves `champion` where
# it used to promote to Production and `challenger` where it used Staging.
STAGE_TO_ALIAS = {"production": "champion", "staging": "challenger"}


class Settings(BaseSettings):
    """The facade's configuration; each field is read from the environment variable of its name."""

    model_config = SettingsConfigDict(case_sensitive=True)

    APP_NAME: str = "Credit Score API"
    APP_VERSION: str = "0.1.0"
    DEBUG: bool = Field(default=False, description="Log at DEBUG; never shows tracebacks to clients.")
    HOST: str = "127.0.0.1"
    PORT: int = Field(default=8000, ge=1, le=65535)

    MLFLOW_TRACKING_URI: str = "http://127.0.0.1:5001"
    MODEL_NAME: str = "credit-score"
    MODEL_ALIAS: str = "champion"
    MODEL_STAGE: str | None = Field(default=None, description="Deprecated: use MODEL_ALIAS.")

    SCORING_URL: str = "http://127.0.0.1:5002"
    UPSTREAM_CONNECT_TIMEOUT: float = Field(default=1.0, gt=0)
    UPSTREAM_READ_TIMEOUT: float = Field(default=5.0, gt=0)
    UPSTREAM_POOL_TIMEOUT: float = Field(default=1.0, gt=0)

    MAX_BATCH_SIZE: int = Field(default=1000, ge=1)
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("MLFLOW_TRACKING_URI", "SCORING_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # NB: the facade talks to both servers over HTTP with httpx; a file:, sqlite: or
        # databricks tracking URI would only fail later, on the first request.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:5001")
        return value.rstrip("/")

    @field_validator("MODEL_NAME")
    @classmethod
    def _quotable_name(cls, value: str) -> str:
        # NB: the name goes inside a quoted registry search filter.
        if not value.strip() or "'" in value or '"' in value:
            raise ValueError("must be a non-empty registered model name without quotes")
        return value

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
