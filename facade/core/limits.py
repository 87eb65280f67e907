"""Back-pressure: at most MAX_IN_FLIGHT predictions at once; the next one is refused, never queued.

NB: a counter rather than an ``asyncio.Semaphore``: a semaphore makes the excess wait, and a queue
in front of a single-worker scoring server only turns overload into timeouts for everyone.
"""

from __future__ import annotations


class InFlightLimiter:
    """Admits a request while fewer than ``limit`` are in flight; no lock: one event loop, no awaits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def try_acquire(self) -> bool:
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1
