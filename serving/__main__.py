"""``python -m serving``: the serving supervisor under uvicorn; SIGTERM or Ctrl-C stops it and its servers.

Reads its settings from the environment (``serving.config``); its scoring servers inherit that
environment (``MLFLOW_TRACKING_URI`` above all: `mlflow models serve` downloads the model from it).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import uvicorn

from serving.app import create_app
from serving.config import Settings


def logging_config(level: str) -> dict[str, Any]:
    """Plain lines on stderr, the supervisor's and uvicorn's (no access log: facades poll every second)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "loggers": {
            "serving": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }


def main() -> None:
    settings = Settings()  # type: ignore[call-arg]  # NB: pydantic-settings reads the environment
    config = uvicorn.Config(
        create_app(settings, dict(os.environ)),
        host=settings.SERVING_HOST,
        port=settings.SUPERVISOR_PORT,
        log_config=logging_config(settings.LOG_LEVEL),
        access_log=False,
        lifespan="on",
    )
    logging.getLogger("serving").info(
        "following %s of %s at %s every %.0f s; raw scoring on port %d, state on port %d",
        " and ".join(f"@{alias}" for alias in settings.aliases),
        settings.MODEL_NAME,
        settings.MLFLOW_TRACKING_URI,
        settings.ROLLOUT_POLL_SECONDS,
        settings.SCORING_PORT,
        settings.SUPERVISOR_PORT,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
