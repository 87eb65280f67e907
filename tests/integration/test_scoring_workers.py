"""Several uvicorn workers per version (SCORING_WORKERS): the supervisor starts them and the API answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from model_code.schema import EXAMPLE_APPLICANTS
from scripts.processes import group_members
from tests.integration.servers import Stack, sqlite_tracking

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with sqlite_tracking(tmp_path_factory.mktemp("workers")) as stack:
        stack.train("n_samples=3000", "n_estimators=20")
        stack.start_supervisor(SCORING_WORKERS="2")
        stack.start_facade()
        yield stack


def _workers(pgid: int) -> list[int]:
    """The uvicorn workers in the server's group: multiprocessing's spawned children."""
    commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in group_members(pgid)}
    return [
        pid
        for pid, command in commands.items()
        if b"multiprocessing.spawn" in command and b"resource_tracker" not in command
    ]


def test_a_version_is_served_by_two_workers_and_the_api_answers_through_them(stack: Stack) -> None:
    champion = httpx.get(f"{stack.supervisor_url}/state", timeout=10).json()["champion"]
    deadline = time.monotonic() + 60
    while len(_workers(champion["pid"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    members = [Path(f"/proc/{pid}/cmdline").read_bytes()[:200] for pid in group_members(champion["pid"])]
    assert len(_workers(champion["pid"])) == 2, members

    applicant = EXAMPLE_APPLICANTS["approved"]
    with httpx.Client(base_url=stack.api_url, timeout=30, trust_env=False) as api:
        answers = [api.post("/api/v1/predict", json=applicant) for _ in range(20)]
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["model_version"] for a in answers} == {champion["version"]}
