"""The serving supervisor's published state: which scoring server answers each alias, and how rollouts went.

The serving supervisor (``python -m serving``) writes it at ``GET /state``; the facade reads it to call
the active scoring servers directly, and tells the supervisor in the same request which servers it
still uses (the drain handshake). Stdlib dataclasses only, so that the facade image can copy it; both
sides read and write it with pydantic's TypeAdapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

# The supervisor's state endpoint, and the query parameters a facade reports with: its id and the
# scoring servers (base URLs, comma-separated) it still has requests for or may send requests to.
STATE_PATH: Final = "/state"
CLIENT_PARAM: Final = "client"
USING_PARAM: Final = "using"

# NB: a rollout is in one of these phases; only `completed` moved traffic.
RolloutPhase = Literal["starting", "gating", "completed", "failed"]
# What `credit_model_rollouts_total{outcome}` counts: the new server passed and serves, it never
# answered /ping (it could not start or load), or it answered and failed the gate.
RolloutOutcome = Literal["completed", "start_failed", "gate_failed"]


@dataclass(frozen=True)
class Backend:
    """One `mlflow models serve` of one registered version."""

    version: str
    run_id: str
    url: str
    pid: int
    since: datetime


@dataclass(frozen=True)
class Rollout:
    """The latest attempt to serve an alias's version: in progress, completed or failed (and why)."""

    alias: str
    version: str
    previous_version: str | None
    state: RolloutPhase
    reason: str
    started_at: datetime
    finished_at: datetime | None = None
    # Seconds from the server's start to its passing the gate (None until it has).
    start_seconds: float | None = None


@dataclass(frozen=True)
class ServingState:
    """What the supervisor serves now, per alias, what it is draining, and each alias's latest rollout."""

    model_name: str
    champion_alias: str
    champion: Backend | None = None
    challenger: Backend | None = None
    draining: list[Backend] = field(default_factory=list)
    rollouts: dict[str, Rollout] = field(default_factory=dict)
