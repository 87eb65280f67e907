"""``python -m facade``: run the API under uvicorn with one worker, on HOST and PORT from the settings."""

from __future__ import annotations

import logging

import uvicorn

from facade.core.config import get_settings


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=settings.LOG_LEVEL, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # NB: one worker per process: uvicorn with 2+ workers adds about 40 ms to every keep-alive
    # request here (see DESIGN.md); scale by processes or containers instead.
    uvicorn.run(
        "facade.main:create_app",
        factory=True,
        host=settings.HOST,
        port=settings.PORT,
        workers=1,
        proxy_headers=False,
        log_level=settings.LOG_LEVEL.lower(),
    )


if __name__ == "__main__":
    main()
