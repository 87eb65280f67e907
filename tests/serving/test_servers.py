"""Stopping one scoring server's process group, with real processes standing in for `mlflow models serve`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from scripts.processes import group_members
from serving.registry import Version
from serving.servers import ScoringServer, free_port


class SlowToReap(subprocess.Popen[bytes]):
    """A real process whose exit is seen only ``lag`` seconds after it started, as one that is stuck
    in uninterruptible sleep (a hung disk or NFS) takes long to go even after SIGKILL."""

    lag = 1.5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen_at = time.monotonic() + self.lag

    def poll(self) -> int | None:
        return None if time.monotonic() < self.seen_at else super().poll()

    def wait(self, timeout: float | None = None) -> int:
        left = self.seen_at - time.monotonic()
        if left > 0:
            time.sleep(left if timeout is None else min(left, timeout))
            if time.monotonic() < self.seen_at:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return super().wait(timeout)


def _kill_if_left(pgid: int) -> None:
    """Only the group this test started, should the code under test have left it."""
    if group_members(pgid):
        os.killpg(pgid, signal.SIGKILL)


def _server() -> ScoringServer:
    return ScoringServer(
        "credit-score",
        Version("1", "1" * 32),
        bind_host="127.0.0.1",
        local_host="127.0.0.1",
        advertise_host="127.0.0.1",
        port=1,
        env={},
    )


def test_stopping_a_server_never_blocks_the_event_loop() -> None:
    """Every alias, the forwarder and the state port share the loop: a stop that waits must not stall them."""
    server = _server()
    server.process = SlowToReap(["sleep", "300"], stdin=subprocess.DEVNULL, start_new_session=True)
    pgid = server.process.pid

    async def scenario() -> float:
        gaps, last = [0.0], time.monotonic()

        async def tick() -> None:
            nonlocal last
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await server.stop(grace=0.5)
        await asyncio.sleep(0.05)  # NB: the ticker's next turn measures a stall at the stop's end
        ticker.cancel()
        return max(gaps)

    try:
        longest_stall = asyncio.run(scenario())
    finally:
        _kill_if_left(pgid)
    assert longest_stall < 0.25, f"the event loop stalled {longest_stall:.2f} s while a server stopped"
    assert group_members(pgid) == []


def test_stopping_a_server_stops_the_child_its_exited_parent_left_in_the_group() -> None:
    server = _server()
    server.process = subprocess.Popen(
        ["sh", "-c", "sleep 300 & wait"], stdin=subprocess.DEVNULL, start_new_session=True
    )
    pgid = server.process.pid
    try:
        deadline = time.monotonic() + 10
        while len(group_members(pgid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # NB: until sh has started its child
        server.process.send_signal(signal.SIGKILL)  # NB: the parent only
        server.process.wait(timeout=10)
        assert group_members(pgid) != [], "its child lives on in the group"
        asyncio.run(server.stop(grace=2.0))
        assert group_members(pgid) == []
    finally:
        _kill_if_left(pgid)


# Stands in for uvicorn: accepts one connection on the socket it was handed and tells the client
# which descriptor UVICORN_FD named and whether the accepted connection has TCP_NODELAY.
ACCEPTS_ON_THE_HANDED_SOCKET = """
import os, socket
listener = socket.socket(fileno=int(os.environ["UVICORN_FD"]))
conn, _ = listener.accept()
nodelay = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
conn.sendall(f"fd={os.environ['UVICORN_FD']} nodelay={int(bool(nodelay))}".encode())
conn.close()
"""


def test_a_server_listens_on_a_socket_the_supervisor_bound_and_its_connections_have_no_nagle_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With several uvicorn workers, uvicorn's own socket would leave Nagle on: ~40 ms a keep-alive call."""
    monkeypatch.setattr(
        "serving.servers.serve_command",
        lambda *args: [sys.executable, "-c", ACCEPTS_ON_THE_HANDED_SOCKET],
    )
    server = ScoringServer(
        "credit-score",
        Version("1", "1" * 32),
        bind_host="127.0.0.1",
        local_host="127.0.0.1",
        advertise_host="127.0.0.1",
        port=free_port("127.0.0.1"),
        env=dict(os.environ),
        workers=2,
    ).start()
    pgid = server.pid
    try:
        # NB: no retry loop: the port listens from the moment start() returns.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            answer = client.recv(100).decode()
        assert answer == "fd=0 nodelay=1"
        server.process.wait(timeout=10)  # type: ignore[union-attr]
    finally:
        _kill_if_left(pgid)
    with pytest.raises(ConnectionRefusedError):  # NB: the supervisor kept no copy of the listener
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
