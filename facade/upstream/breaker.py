"""A circuit breaker in front of the scoring server: while it is known to be down, fail at once.

Closed: calls go through; ``failure_threshold`` consecutive connection failures open the circuit.
Open: calls are refused without touching the network until ``cool_down`` seconds have passed.
Half-open: one call goes through as a probe (the others are still refused); its success closes
the circuit, its failure opens it for another cool-down.

NB: written here rather than taken from a library: pybreaker is synchronous (its async path
needs Tornado), aiobreaker and purgatory are barely maintained, and the whole state machine is
the forty lines below. It needs no lock: the facade runs one event loop, and no method awaits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures of one upstream and decides whether the next call may go out."""

    def __init__(
        self, failure_threshold: int, cool_down: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self.cool_down:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def failing_fast(self) -> bool:
        """True while calls are refused or only a probe goes out (open or half-open)."""
        return self.state is not BreakerState.CLOSED

    def retry_after(self) -> int:
        """Whole seconds until a probe may go out (at least 1), for a Retry-After header."""
        if self._opened_at is None:
            return 1
        return max(1, math.ceil(self._opened_at + self.cool_down - self._clock()))

    def allow(self) -> bool:
        """True when a call may go out now; in half-open state only the first caller is let through."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record_success(self) -> None:
        """The upstream answered (whatever the status): it is up."""
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        """The upstream could not be reached."""
        self._failures += 1
        if self._probing or self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._probing = False

    def record_inconclusive(self) -> None:
        """The call ended without telling whether the upstream is up (a timeout, a cancellation)."""
        self._probing = False
