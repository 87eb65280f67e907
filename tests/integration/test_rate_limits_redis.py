"""Two real facade processes sharing one real Redis for their rate limits: the quota holds across both.

The replicas are ``python -m facade`` on free ports in front of the stand-in upstream; Redis is
Debian's ``redis-server``, started here on a free 127.0.0.1 port without persistence. When Redis
goes away, each replica counts on its own (fail open, bounded per replica) and says so in
``credit_rate_limit_storage_errors_total``; when it comes back, the quota is shared again.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from model_code.schema import EXAMPLE_APPLICANTS
from scripts import commands
from scripts.processes import ManagedProcess, free_port
from tests.integration.stub_upstream import StubUpstream
from tests.structured_fields import rate_limit_fields

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason="redis-server (Debian's redis-server package) is not installed; .ci/run installs it",
    ),
]

APPROVED = EXAMPLE_APPLICANTS["approved"]
KEYS = {
    "scoring-app": "k3y-0f-the-scoring-app-2f9d1c",
    "batch-job": "k3y-0f-the-batch-job-7c1d2e00",
    "ops-app": "k3y-0f-the-ops-app-0a9b8c7d6e",
}
QUOTA = 20
BATCH_QUOTA = 5


@dataclass
class Replicas:
    """Redis, the stand-in upstream and two facades, all on free 127.0.0.1 ports."""

    root: Path
    redis_port: int = field(default_factory=free_port)
    redis: ManagedProcess | None = None
    facades: list[ManagedProcess] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def start_redis(self) -> None:
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.root)]  # fmt: skip
        self.redis = ManagedProcess("redis", argv, self.root / "redis.log", cwd=self.root).start()
        client = redis.Redis(port=self.redis_port, socket_timeout=1)
        self.redis.wait_until(lambda: _pings(client), timeout=30, what="PONG")

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.stop()

    def start_facade(self, stub: StubUpstream) -> None:
        port = free_port()
        keys = self.root / "api_keys"
        keys.write_text(
            "".join(f"{name}:credit:predict,credit:model:read:{key}\n" for name, key in KEYS.items())
        )
        env = commands.child_env(
            HOST="127.0.0.1",
            PORT=str(port),
            SCORING_URL=stub.url,
            MLFLOW_TRACKING_URI=stub.url,
            MODEL_NAME="credit-score",
            API_KEYS_FILE=str(keys),
            RATE_LIMIT=f"{QUOTA}/minute",
            RATE_LIMITS_BY_CLIENT=f'{{"batch-job": "{BATCH_QUOTA}/minute"}}',
            RATE_LIMIT_STORAGE_URL=f"redis://127.0.0.1:{self.redis_port}/0",
        )
        name = f"facade-{len(self.facades) + 1}"
        process = ManagedProcess(name, commands.facade(), self.root / f"{name}.log", env=env, cwd=self.root)
        self.facades.append(process.start())
        url = f"http://127.0.0.1:{port}"
        process.wait_http(f"{url}/api/v1/health/ready", timeout=60)
        self.urls.append(url)

    def stop(self) -> None:
        for process in reversed([*self.facades, *([self.redis] if self.redis else [])]):
            process.stop()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    stub = StubUpstream().start()
    stack = Replicas(tmp_path_factory.mktemp("replicas"))
    try:
        stack.start_redis()
        stack.start_facade(stub)
        stack.start_facade(stub)
        yield stack
    finally:
        stack.stop()
        stub.stop()


async def _burst(urls: list[str], client: str, requests: int) -> list[tuple[int, httpx.Response]]:
    """``requests`` predictions at once, spread over the replicas in turn: (replica, answer)."""
    headers = {"X-API-Key": KEYS[client]}
    async with httpx.AsyncClient(timeout=20, limits=httpx.Limits(max_connections=32)) as http:

        async def one(n: int) -> tuple[int, httpx.Response]:
            replica = n % len(urls)
            return replica, await http.post(f"{urls[replica]}/api/v1/predict", json=APPROVED, headers=headers)

        return list(await asyncio.gather(*(one(n) for n in range(requests))))


def burst(urls: list[str], client: str, requests: int) -> list[tuple[int, httpx.Response]]:
    return asyncio.run(asyncio.wait_for(_burst(urls, client, requests), timeout=120))


def storage_errors(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("credit_rate_limit_storage_errors_total "):
            return float(line.split()[1])
    raise AssertionError("credit_rate_limit_storage_errors_total is not exported")


def test_the_quota_holds_across_both_replicas(replicas: Replicas, figure: Callable[[str, str], None]) -> None:
    answers = burst(replicas.urls, "scoring-app", 3 * QUOTA)

    statuses = Counter(response.status_code for _, response in answers)
    assert statuses == {200: QUOTA, 429: 2 * QUOTA}, statuses
    by_replica = Counter((replica, response.status_code) for replica, response in answers)
    # NB: both replicas refused some: the request past the quota is refused whichever one it reaches.
    assert by_replica[(0, 429)] > 0
    assert by_replica[(1, 429)] > 0
    resets = []
    for _, response in answers:
        policy, left = rate_limit_fields(response.headers)
        assert policy == {f"{QUOTA}-per-minute": {"q": QUOTA, "w": 60}}
        assert 0 <= left[f"{QUOTA}-per-minute"]["r"] < QUOTA
        resets.append(left[f"{QUOTA}-per-minute"]["t"])
        if response.status_code == 429:
            assert response.json()["type"].endswith("/quota-exceeded")
            assert int(response.headers["retry-after"]) >= 1
    # NB: one window, wherever it was opened: both replicas tell the same reset (within rounding).
    assert 55 <= min(resets) <= max(resets) <= 60
    batch = Counter(
        response.status_code for _, response in burst(replicas.urls, "batch-job", 3 * BATCH_QUOTA)
    )
    assert batch == {200: BATCH_QUOTA, 429: 2 * BATCH_QUOTA}, batch
    split = ", ".join(f"replica {r + 1}: {by_replica[(r, 200)]} + {by_replica[(r, 429)]}" for r in (0, 1))
    figure(
        "rate limit across two replicas, one Redis",
        f"{QUOTA}/minute: {3 * QUOTA} concurrent requests -> {statuses[200]} allowed, {statuses[429]} "
        f"limited ({split}); override {BATCH_QUOTA}/minute: {batch[200]} allowed, {batch[429]} limited",
    )


def test_without_redis_each_replica_limits_on_its_own_until_it_is_back(
    replicas: Replicas, figure: Callable[[str, str], None]
) -> None:
    errors_before = [storage_errors(url) for url in replicas.urls]
    replicas.stop_redis()
    try:
        started = time.perf_counter()
        alone = [burst([url], "ops-app", QUOTA + 5) for url in replicas.urls]
        elapsed = time.perf_counter() - started
        errors_after = [storage_errors(url) for url in replicas.urls]
        # Right after: counted in the replica, without asking Redis again (no new error).
        later = burst(replicas.urls[:1], "ops-app", 5)
        errors_later = storage_errors(replicas.urls[0])
    finally:
        replicas.start_redis()

    for answers in alone:
        statuses = Counter(response.status_code for _, response in answers)
        # NB: fail open, but bounded: each replica enforces the whole policy by itself.
        assert statuses == {200: QUOTA, 429: 5}, statuses
    # NB: the requests in flight when Redis went away each found it gone; then none for a while.
    assert all(
        1 <= after - before <= QUOTA + 5 for after, before in zip(errors_after, errors_before, strict=True)
    )
    assert {response.status_code for _, response in later} == {429}
    assert errors_later == errors_after[0]

    # Redis is back (empty): after the replicas' retry interval the quota is shared again.
    time.sleep(5.5)
    again = Counter(
        response.status_code for _, response in burst(replicas.urls, "batch-job", 3 * BATCH_QUOTA)
    )
    assert again == {200: BATCH_QUOTA, 429: 2 * BATCH_QUOTA}, again
    figure(
        "rate limit with Redis down",
        f"{QUOTA}/minute: each replica alone allowed {QUOTA} of {QUOTA + 5} (fleet: {2 * QUOTA}), no 5xx, "
        f"{2 * (QUOTA + 5)} requests in {elapsed:.2f} s; shared again once Redis was back",
    )
