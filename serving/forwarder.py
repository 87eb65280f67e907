"""The champion's stable raw address (``SCORING_PORT``): each TCP connection goes on to the active server.

Data scientists call ``/invocations`` and ``/ping`` at one address whatever version serves; the
facade does not come this way (it calls the active server directly), except as its fallback while
the supervisor's state is unknown. A connection is bound to the server active when it was opened,
so a keep-alive connection opened before a switch keeps reaching the old server until that server
is drained and stopped; the drain waits for such connections to close, up to its longest period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024

Target = Callable[[], tuple[str, int] | None]


class Forwarder:
    """Accepts on ``host:port`` and pipes every connection to ``target()`` (closing it when there is none)."""

    def __init__(self, host: str, port: int, target: Target) -> None:
        self.host, self.port = host, port
        self._target = target
        self._server: asyncio.Server | None = None
        self._open: Counter[int] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    def connections_to(self, port: int) -> int:
        """Forwarded connections open now to the server on ``port``."""
        return self._open[port]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        target = self._target()
        try:
            if target is None:
                return  # NB: no champion served yet: the caller sees the connection closed
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*target)
            except OSError:
                return
            self._open[target[1]] += 1
            to_server = asyncio.create_task(_pipe(client_reader, upstream_writer))
            try:
                # NB: the connection ends when the server closes it (uvicorn closes idle keep-alive
                # connections after 5 s, and all of them when it stops), whatever the client does.
                await _pipe(upstream_reader, client_writer)
            finally:
                to_server.cancel()
                await asyncio.gather(to_server, return_exceptions=True)
                self._open[target[1]] -= 1
                await _close(upstream_writer)
        finally:
            await _close(client_writer)
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while data := await reader.read(CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
    # NB: pass the half-close on, so an HTTP/1.0 client or a server closing after its answer still works.
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ConnectionError):
        await writer.wait_closed()
