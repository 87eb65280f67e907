"""The process's shutdown state, shared by the server loop (``facade.__main__``) and readiness."""

from __future__ import annotations


class Lifecycle:
    """Set to draining at the start of shutdown, so readiness answers 503 before the server stops.

    NB: only a flag written from a signal handler and read by requests: nothing to lock.
    """

    def __init__(self) -> None:
        self.draining = False

    def start_draining(self) -> None:
        self.draining = True
