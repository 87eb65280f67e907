"""The stable raw port: each connection goes on to the server active when it opened, bytes unchanged."""

from __future__ import annotations

import asyncio

from scripts.processes import free_port
from serving.forwarder import Forwarder


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_connections_reach_the_target_of_their_opening_and_are_counted() -> None:
    async def scenario() -> tuple[bytes, bytes, int, int, int]:
        first, first_port = await _echo_server()
        second, second_port = await _echo_server()
        target: list[tuple[str, int]] = [("127.0.0.1", first_port)]
        forwarder = Forwarder("127.0.0.1", free_port(), lambda: target[0])
        await forwarder.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", forwarder.port)
            writer.write(b"one")
            answered = await reader.read(100)
            open_to_first = forwarder.connections_to(first_port)
            target[0] = ("127.0.0.1", second_port)  # NB: a switch: new connections go to the second
            writer.write(b"two")
            pinned = await reader.read(100)
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.1)
            after_close = forwarder.connections_to(first_port)
            again_reader, again_writer = await asyncio.open_connection("127.0.0.1", forwarder.port)
            again_writer.write(b"three")
            await again_reader.read(100)
            to_second = forwarder.connections_to(second_port)
            again_writer.close()
            return answered, pinned, open_to_first, after_close, to_second
        finally:
            await forwarder.stop()
            first.close()
            second.close()

    answered, pinned, open_to_first, after_close, to_second = asyncio.run(scenario())

    assert answered == b"echo:one"
    assert pinned == b"echo:two", "an open connection stays with the server it was opened to"
    assert (open_to_first, after_close, to_second) == (1, 0, 1)


def test_with_no_server_active_a_connection_is_closed_at_once() -> None:
    async def scenario() -> bytes:
        forwarder = Forwarder("127.0.0.1", free_port(), lambda: None)
        await forwarder.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", forwarder.port)
            writer.write(b"GET /ping HTTP/1.1\r\n\r\n")
            try:
                data = await asyncio.wait_for(reader.read(100), 5)
            except ConnectionResetError:
                data = b""  # NB: closed with the request unread: the kernel resets the connection
            writer.close()
            return data
        finally:
            await forwarder.stop()

    assert asyncio.run(scenario()) == b""
