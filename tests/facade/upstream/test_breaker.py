"""The circuit breaker's state machine, driven by a fake clock."""

from __future__ import annotations

from facade.upstream.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, threshold: int = 3, cool_down: float = 2.0) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, cool_down=cool_down, clock=clock)


def test_stays_closed_below_the_threshold() -> None:
    b = breaker(Clock())

    b.record_failure()
    b.record_failure()

    assert b.state is BreakerState.CLOSED
    assert b.allow()


def test_opens_after_threshold_consecutive_failures_and_refuses_calls() -> None:
    b = breaker(Clock())

    for _ in range(3):
        b.record_failure()

    assert b.state is BreakerState.OPEN
    assert not b.allow()
    assert b.retry_after() == 2


def test_a_success_resets_the_count() -> None:
    b = breaker(Clock())
    b.record_failure()
    b.record_failure()

    b.record_success()
    b.record_failure()
    b.record_failure()

    assert b.state is BreakerState.CLOSED


def test_inconclusive_outcomes_neither_open_nor_close() -> None:
    b = breaker(Clock())
    b.record_failure()
    b.record_failure()

    b.record_inconclusive()
    b.record_failure()

    assert b.state is BreakerState.OPEN


def test_after_the_cool_down_exactly_one_probe_goes_out() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()

    clock.now += 2.0

    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()
    assert not b.allow()
    assert not b.allow()


def test_a_successful_probe_closes_the_circuit() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.now += 2.0
    b.allow()

    b.record_success()

    assert b.state is BreakerState.CLOSED
    assert b.allow()
    assert b.allow()


def test_a_failed_probe_opens_the_circuit_for_another_cool_down() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.now += 2.5
    b.allow()

    b.record_failure()

    assert b.state is BreakerState.OPEN
    assert b.retry_after() == 2
    clock.now += 1.9
    assert not b.allow()
    clock.now += 0.1
    assert b.allow()


def test_an_inconclusive_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.now += 2.0
    assert b.allow()

    b.record_inconclusive()

    assert b.allow()


def test_retry_after_counts_down_in_whole_seconds() -> None:
    clock = Clock()
    b = breaker(clock, cool_down=5.0)
    for _ in range(3):
        b.record_failure()

    clock.now += 3.5

    assert b.retry_after() == 2
