"""Per-client rate limits: fixed windows counted by the ``limits`` library (async API), and the fields
that announce them.

A policy is one or more limits (``50/second;2000/minute``); a request is admitted while every
window of its client's policy has quota left. Counters live in memory (one replica) or in Redis
(shared by every replica: the request past the quota is refused whichever replica it reaches).
The answer carries the IETF draft's ``RateLimit-Policy`` and ``RateLimit`` fields
(draft-ietf-httpapi-ratelimit-headers-11), lists of RFC 9651 structured-field items such as
``"50-per-second";q=50;w=1`` and ``"50-per-second";r=49;t=1``.

When Redis fails, counting falls back to this replica's memory for a few seconds before Redis is
tried again (fail open, but bounded): each replica then enforces the whole policy on its own, so
the fleet admits at most N times the quota, and the in-flight cap still protects the service.
Refusing every prediction because the counter store is down would turn a fairness tool into an
outage of credit decisions.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import redis.asyncio
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

logger = logging.getLogger(__name__)

UNLIMITED = "unlimited"
# NB: the namespace of every counter key, so that one Redis can serve other applications too.
NAMESPACE = "credit-score"
# NB: Redis on the same network answers in well under a millisecond; a quarter second means it is
# not answering, and a request should not wait longer than that for a fairness check.
REDIS_TIMEOUT_SECONDS = 0.25
# NB: after a failure, count locally this long before trying Redis again, so that an outage costs
# one timeout every few seconds rather than one per request.
REDIS_RETRY_SECONDS = 5.0
STORAGE_SCHEMES = ("memory", "redis", "rediss")


def policy_name(item: RateLimitItem) -> str:
    """The policy's name in the fields: ``50-per-second``, ``100-per-10-seconds``."""
    unit = item.GRANULARITY.name
    return (
        f"{item.amount}-per-{unit}" if item.multiples == 1 else f"{item.amount}-per-{item.multiples}-{unit}s"
    )


@dataclass(frozen=True)
class Policy:
    """A client's limits, shortest window first."""

    items: tuple[RateLimitItem, ...]

    @classmethod
    def parse(cls, text: str) -> Policy:
        """``50/second;2000/minute`` (``limits`` notation); ValueError when it is not one."""
        try:
            items = parse_many(text)
        except ValueError:
            raise ValueError("must be limits such as 50/second;2000/minute") from None
        unique = {policy_name(item): item for item in items if item.amount > 0}
        if len(unique) != len(items):
            raise ValueError("must be limits with a positive amount, each window once")
        return cls(tuple(sorted(unique.values(), key=lambda item: item.get_expiry())))

    @property
    def field(self) -> str:
        """The RateLimit-Policy field value."""
        return ", ".join(f'"{policy_name(i)}";q={i.amount};w={i.get_expiry()}' for i in self.items)


def parse_policy(text: str) -> Policy | None:
    """A policy, or None for ``unlimited``."""
    return None if text.strip().lower() == UNLIMITED else Policy.parse(text)


@dataclass(frozen=True)
class Verdict:
    """Whether one request is admitted, and what to tell the client about its quota."""

    allowed: bool
    headers: dict[str, str]
    retry_after: int | None = None
    violated: tuple[str, ...] = ()
    degraded: bool = field(default=False)


def _redis_storage(url: str) -> Storage:
    # NB: redis-py retries a failed command ten times with backoff by default; one immediate retry
    # covers a pooled connection that Redis closed, and anything longer is an outage.
    options: dict[str, object] = {
        "implementation": "redispy",
        "wrap_exceptions": True,
        "key_prefix": "LIMITS",
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 1),
    }
    storage = storage_from_string(f"async+{url}", **options)  # type: ignore[arg-type]
    assert isinstance(storage, Storage)
    return storage


class RateLimiter:
    """Counts each client's requests against its policy (``default``, or its own in ``by_client``)."""

    def __init__(
        self,
        storage_url: str,
        default: Policy | None,
        by_client: Mapping[str, Policy | None],
        on_storage_error: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default = default
        self.by_client = dict(by_client)
        self._local = _Counters(MemoryStorage())
        self._shared = None if storage_url.startswith("memory") else _Counters(_redis_storage(storage_url))
        self._on_storage_error = on_storage_error
        self._clock = clock
        self._shared_down_until = float("-inf")

    @property
    def enabled(self) -> bool:
        return self.default is not None or any(p is not None for p in self.by_client.values())

    def policy_for(self, client: str) -> Policy | None:
        return self.by_client.get(client, self.default)

    async def hit(self, key: str, policy: Policy) -> Verdict:
        """Count one request of the client ``key`` and judge it against ``policy``."""
        if self._shared is not None and self._clock() >= self._shared_down_until:
            try:
                return await self._shared.count(key, policy, degraded=False)
            except (TimeoutError, StorageError, OSError) as exc:
                self._shared_down_until = self._clock() + REDIS_RETRY_SECONDS
                self._on_storage_error()
                logger.warning(
                    "rate-limit storage failed (%s): counting in this replica for %.0f s",
                    type(exc).__name__,
                    REDIS_RETRY_SECONDS,
                )
        return await self._local.count(key, policy, degraded=self._shared is not None)

    async def aclose(self) -> None:
        """Close the Redis connections, if any."""
        if self._shared is not None:
            await self._shared.aclose()


class _Counters:
    """Fixed-window counters in one ``limits`` storage, as its fixed-window strategy keeps them.

    NB: the storage API rather than ``FixedWindowRateLimiter``: the strategy's ``hit`` and
    ``get_window_stats`` cost three storage calls a window (Redis round trips), where the count
    ``incr`` returns already gives what is left; the window's end is remembered from its first
    request (or asked once with ``get_expiry`` when another replica started it). One call a
    window, same keys and semantics as the strategy.
    """

    # NB: remembered window ends are dropped once past; this caps the memory between sweeps.
    MAX_REMEMBERED = 10_000

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._ends: dict[str, float] = {}

    async def count(self, key: str, policy: Policy, degraded: bool) -> Verdict:
        # NB: windows are hit shortest first and no further once one refuses: a burst turned away
        # by the per-second window does not also use up the per-minute quota.
        violated: RateLimitItem | None = None
        limits: list[str] = []
        reset_of_violated = 0
        now = time.time()
        for item in policy.items:
            counter = item.key_for(NAMESPACE, key)
            if violated is None:
                used = await self.storage.incr(counter, item.get_expiry())
                if used > item.amount:
                    violated = item
            else:
                used = await self.storage.get(counter)
            reset = min(item.get_expiry(), max(0, math.ceil(await self._end(counter, item, used, now) - now)))
            if item is violated:
                reset_of_violated = reset
            limits.append(f'"{policy_name(item)}";r={max(0, item.amount - used)};t={reset}')
        return _verdict(policy, limits, violated, reset_of_violated, degraded)

    async def _end(self, counter: str, item: RateLimitItem, used: int, now: float) -> float:
        if used == 1:
            # NB: this request opened the window (the storage set its expiry just now).
            end = now + item.get_expiry()
        elif (end := self._ends.get(counter, 0.0)) <= now:
            end = await self.storage.get_expiry(counter)
        else:
            return end
        if len(self._ends) >= self.MAX_REMEMBERED:
            self._ends = {name: at for name, at in self._ends.items() if at > now}
        self._ends[counter] = end
        return end

    async def aclose(self) -> None:
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if isinstance(client, redis.asyncio.Redis):
            await client.aclose()


def _verdict(
    policy: Policy, limits: list[str], violated: RateLimitItem | None, reset_of_violated: int, degraded: bool
) -> Verdict:
    headers = {"RateLimit-Policy": policy.field, "RateLimit": ", ".join(limits)}
    if violated is None:
        return Verdict(allowed=True, headers=headers, degraded=degraded)
    return Verdict(
        allowed=False,
        headers=headers,
        retry_after=max(1, reset_of_violated),
        violated=(policy_name(violated),),
        degraded=degraded,
    )
