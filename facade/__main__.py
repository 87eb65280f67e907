"""``python -m facade``: run the API under uvicorn, one worker, JSON logs, and a graceful SIGTERM.

With TLS_CERT_FILE and TLS_KEY_FILE it serves HTTPS itself (TLS 1.2 or later), and with
TLS_CLIENT_CA_FILE it verifies client certificates (mutual TLS); see ``facade.core.tls``.

On SIGTERM the facade first turns readiness to 503 (so load balancers stop sending traffic) and
keeps serving for SHUTDOWN_DRAIN_SECONDS; then uvicorn stops accepting connections and waits up
to SHUTDOWN_GRACE_SECONDS for the requests in flight before the process exits. A second signal,
or SIGINT, skips the drain.
"""

from __future__ import annotations

import logging
import signal
import ssl
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from facade.core.config import Settings, get_settings
from facade.core.lifecycle import Lifecycle
from facade.core.logs import logging_config
from facade.core.tls import TlsHttpToolsProtocol, server_context
from facade.main import create_app

logger = logging.getLogger("facade.shutdown")


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose SIGTERM starts with a drain period instead of an immediate shutdown."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_seconds: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain_seconds = drain_seconds
        self._drain_until: float | None = None
        self._drain_logged = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # NB: runs in a signal handler: only set flags; the server loop's tick does the rest.
        draining_already = self.lifecycle.draining
        self.lifecycle.start_draining()
        if sig == signal.SIGTERM and not draining_already and self.drain_seconds > 0:
            self._drain_until = time.monotonic() + self.drain_seconds
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None:
            if not self._drain_logged:
                self._drain_logged = True
                logger.info("SIGTERM: readiness is 503; draining for %.1f s", self.drain_seconds)
            if time.monotonic() >= self._drain_until:
                self._drain_until = None
                super().handle_exit(signal.SIGTERM, None)
        return await super().on_tick(counter)


def tls_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for HTTPS: our own SSLContext (uvicorn's ssl_* options cannot set a minimum
    TLS version) and the protocol that hands the client certificate to the app."""
    if not settings.tls_enabled:
        return {}
    assert settings.TLS_CERT_FILE is not None
    assert settings.TLS_KEY_FILE is not None
    cert, key = settings.TLS_CERT_FILE, settings.TLS_KEY_FILE

    def context_factory(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return server_context(cert, key, settings.TLS_CLIENT_CA_FILE, settings.TLS_CLIENT_AUTH)

    return {"ssl_context_factory": context_factory, "http": TlsHttpToolsProtocol}


def main() -> None:
    settings = get_settings()
    app = create_app(settings)
    # NB: one worker per process: uvicorn with 2+ workers adds about 40 ms to every keep-alive
    # request (docs/architecture.md); scale by processes or containers instead.
    config = uvicorn.Config(
        app,
        host=settings.HOST,
        port=settings.PORT,
        proxy_headers=False,
        log_config=logging_config(settings.log_level),
        access_log=False,
        timeout_graceful_shutdown=settings.SHUTDOWN_GRACE_SECONDS,
        **tls_options(settings),
    )
    DrainingServer(config, app.state.lifecycle, settings.SHUTDOWN_DRAIN_SECONDS).run()


if __name__ == "__main__":
    main()
