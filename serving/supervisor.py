"""The serving supervisor's core: it follows the registry's aliases, rolling new versions out load-first.

For each alias it serves (the champion's, and ``@challenger`` when the facade shadows it), every
``ROLLOUT_POLL_SECONDS`` it reads the version the alias names. When that differs from the version
served, it starts a server of the new version beside the old one, waits for ``/ping``, runs the gate
(``serving.gate``) and only then publishes the new server: in the state facades poll and as the
target of the stable forwarded port. The old server is then drained: kept until every facade that
reports here has stopped using it and no forwarded connection to it is open, or for
``ROLLOUT_DRAIN_SECONDS`` at most, and stopped by process group.

A server that does not start or fails the gate is stopped and never published: the old version keeps
serving, and the failure is logged, counted (``credit_model_rollouts_total{outcome}``) and shown in
the state's rollout; the same version is tried again after ``ROLLOUT_RETRY_SECONDS`` or when the
alias moves. Moving the alias back rolls back the same way (at once, if the old server is still
draining). A server that exits while serving is stopped (what is left of its process group) and
started again.

The background loops (one per alias, and the reaper) outlive any error: an unexpected one is
logged by its class, counted (``credit_model_supervisor_errors_total{loop}``) and the loop goes on
at its next period; ``problems`` names a loop whose last pass failed or that has stopped, and
``/health`` answers 503 with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import traceback
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from model_code.rollout import Rollout, RolloutOutcome, RolloutPhase, ServingState
from model_code.tracking import CHALLENGER
from serving.config import Settings
from serving.gate import gate
from serving.metrics import (
    DRAINING,
    LOOP_ERRORS,
    ROLLOUT_DURATION,
    ROLLOUTS,
    SERVED_VERSION,
    SERVER_EXITS,
    declare,
)
from serving.registry import Registry, RegistryError, Version
from serving.servers import ScoringServer, reap_orphans

logger = logging.getLogger(__name__)

# NB: facades report every second or so (SUPERVISOR_POLL_SECONDS, at most 5); one silent for longer
# than this is gone (scaled down, crashed) and no longer waited for. Should it come back and call a
# stopped server, its failed connection makes it read the state again before it fails a request.
CLIENT_TTL_SECONDS = 15.0
DRAIN_CHECK_SECONDS = 0.2
REAP_SECONDS = 1.0
# NB: while nothing serves an alias, a version that failed is tried again sooner than
# ROLLOUT_RETRY_SECONDS: there is no old version to keep, only an outage to end.
NOTHING_SERVES_RETRY_SECONDS = 15.0
MAX_CLIENTS = 1000

ServerFactory = Callable[[Version], ScoringServer]
ConnectionCount = Callable[[int], int]


@dataclass
class _Report:
    at: float
    using: frozenset[str]


@dataclass(eq=False)
class _Draining:
    server: ScoringServer
    since: float


@dataclass
class _Failing:
    """A background loop whose passes have failed, since ``since``, with the last error's class."""

    error: str
    since: datetime
    times: int = 1


def _now() -> datetime:
    return datetime.now(UTC)


def _raised_at(exc: BaseException) -> str:
    """The innermost frame that raised ``exc``: file, line and function (a code location, no values)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "an unknown place"
    frame = frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"


class Supervisor:
    """Keeps one gated scoring server per alias and publishes which one serves."""

    def __init__(self, settings: Settings, registry: Registry, make_server: ServerFactory) -> None:
        self.settings = settings
        self.registry = registry
        self._make_server = make_server
        # NB: set by the app once the forwarder exists; counts forwarded connections to a port.
        self.connections_to: ConnectionCount = lambda _port: 0
        self._active: dict[str, ScoringServer] = {}
        self._rollouts: dict[str, Rollout] = {}
        self._failed: dict[tuple[str, str], float] = {}
        self._draining: list[_Draining] = []
        self._servers: set[ScoringServer] = set()
        self._reports: dict[str, _Report] = {}
        self._registry_failing: dict[str, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # NB: the loops that must run as long as the supervisor does, by name, and their failures.
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._loop_failing: dict[str, _Failing] = {}
        self._closing = False
        declare(settings.aliases, self.loop_names)

    # --- what facades, the forwarder and operators read --------------------------------------

    def state(self) -> ServingState:
        champion = self._active.get(self.settings.MODEL_ALIAS)
        challenger = self._active.get(CHALLENGER) if CHALLENGER != self.settings.MODEL_ALIAS else None
        return ServingState(
            model_name=self.settings.MODEL_NAME,
            champion_alias=self.settings.MODEL_ALIAS,
            champion=champion.describe() if champion else None,
            challenger=challenger.describe() if challenger else None,
            draining=[entry.server.describe() for entry in self._draining],
            rollouts=dict(self._rollouts),
        )

    def champion_address(self) -> tuple[str, int] | None:
        """Where the stable port forwards a new connection: the champion's active server, if any."""
        server = self._active.get(self.settings.MODEL_ALIAS)
        return (server.local_host, server.port) if server is not None else None

    @property
    def loop_names(self) -> tuple[str, ...]:
        return (*(f"follow-{alias}" for alias in self.settings.aliases), "reaper")

    def problems(self) -> list[str]:
        """Why the supervisor is not doing its work now: loops that stopped or whose last pass failed."""
        found = []
        for name, task in self._loops.items():
            if task.done() and not self._closing:
                error = task.exception() if not task.cancelled() else None
                why = f" ({type(error).__name__})" if error is not None else ""
                found.append(f"{name} has stopped{why}: restart the supervisor")
        for name, failing in self._loop_failing.items():
            found.append(
                f"{name} failed {failing.times} time(s) in a row since {failing.since.isoformat()} "
                f"({failing.error}); what is served keeps serving"
            )
        return found

    def report(self, client: str, using: Iterable[str]) -> None:
        """A facade says which scoring servers it still uses (its part of the drain handshake)."""
        now = time.monotonic()
        if len(self._reports) >= MAX_CLIENTS:
            self._reports = {k: r for k, r in self._reports.items() if now - r.at <= CLIENT_TTL_SECONDS}
        if client in self._reports or len(self._reports) < MAX_CLIENTS:
            self._reports[client] = _Report(now, frozenset(using))

    # --- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        for alias in self.settings.aliases:
            name = f"follow-{alias}"
            self._loops[name] = self._spawn_task(
                self._forever(name, functools.partial(self._follow, alias)), name
            )
        self._loops["reaper"] = self._spawn_task(self._forever("reaper", self._reap, REAP_SECONDS), "reaper")

    async def close(self) -> None:
        """Stop following, then stop every server started here (active, draining or starting)."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(server.stop() for server in list(self._servers)), return_exceptions=True)
        self._servers.clear()

    def _spawn_task(self, coroutine: Coroutine[None, None, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _forever(
        self, name: str, one_pass: Callable[[], Coroutine[None, None, None]], period: float | None = None
    ) -> None:
        """Run ``one_pass`` every ``period`` (ROLLOUT_POLL_SECONDS) whatever it raises, but a cancel."""
        while True:
            try:
                await one_pass()
            except Exception as exc:  # NB: not CancelledError (a BaseException): close() stops the loop
                LOOP_ERRORS.labels(name).inc()
                failing = self._loop_failing.get(name)
                if failing is None:
                    # NB: the class and where it was raised, never its text: that may quote what the
                    # registry or a server answered.
                    logger.error(
                        "%s failed (%s at %s); trying again at its next period; what is served keeps serving",
                        name,
                        type(exc).__name__,
                        _raised_at(exc),
                    )
                    self._loop_failing[name] = _Failing(type(exc).__name__, _now())
                else:
                    failing.error, failing.times = type(exc).__name__, failing.times + 1
            else:
                if self._loop_failing.pop(name, None) is not None:
                    logger.info("%s works again", name)
            await asyncio.sleep(self.settings.ROLLOUT_POLL_SECONDS if period is None else period)

    async def _follow(self, alias: str) -> None:
        try:
            await self.follow(alias)
            if self._registry_failing.pop(alias, False):
                logger.info("the registry answers again; following @%s", alias)
        except RegistryError as exc:
            # NB: an outage of the registry, not of the supervisor: told once, and /health stays 200.
            if not self._registry_failing.get(alias):
                logger.warning("cannot read @%s: %s; what is served keeps serving", alias, exc)
            self._registry_failing[alias] = True

    async def _reap(self) -> None:
        reap_orphans({s.pid: s.process for s in self._servers if s.process is not None})

    async def follow(self, alias: str) -> None:
        """Read where ``alias`` points and roll that version out if it is not the one served."""
        active = self._active.get(alias)
        if active is not None and not active.running():
            code = active.process.returncode if active.process is not None else None
            logger.error(
                "the server of version %s (@%s) exited with code %s", active.version.version, alias, code
            )
            SERVER_EXITS.labels(alias).inc()
            self._unpublish(alias)
            # NB: `mlflow models serve` may have died and left its uvicorn child in the group, still
            # on the port (orphaned, unreported): the whole group is stopped before a new one starts.
            await self._stop(active)
            active = None
        target = await self.registry.alias(alias)
        if target is None:
            if active is not None and alias != self.settings.MODEL_ALIAS:
                logger.info("@%s was removed: draining version %s", alias, active.version.version)
                self._unpublish(alias)
                self._drain(active)
            # NB: a champion alias that disappears leaves what serves serving: nothing better exists.
            return
        if active is not None and active.version.version == target.version:
            return
        retry = self.settings.ROLLOUT_RETRY_SECONDS
        if active is None:
            retry = min(retry, NOTHING_SERVES_RETRY_SECONDS)
        failed_at = self._failed.get((alias, target.version))
        if failed_at is not None and time.monotonic() - failed_at < retry:
            return
        await self._roll_out(alias, target, active)

    # --- one rollout ------------------------------------------------------------------------------

    async def _roll_out(self, alias: str, target: Version, previous: ScoringServer | None) -> None:
        began, started_at = time.monotonic(), _now()
        before = previous.version.version if previous is not None else None
        serving = f"version {before} keeps serving" if before else f"nothing serves @{alias}"

        def record(
            state: RolloutPhase,
            reason: str,
            finished_at: datetime | None = None,
            seconds: float | None = None,
        ) -> None:
            self._rollouts[alias] = Rollout(
                alias=alias,
                version=target.version,
                previous_version=before,
                state=state,
                reason=reason,
                started_at=started_at,
                finished_at=finished_at,
                start_seconds=seconds,
            )

        outcome: RolloutOutcome = "start_failed"
        server = self._revive(target.version)
        reason: str | None = None
        try:
            if server is None:
                record("starting", f"starting version {target.version} beside the one serving; {serving}")
                logger.info("@%s moved to version %s: starting it; %s", alias, target.version, serving)
                server = self._make_server(target)
                self._servers.add(server)
                server.start()
            else:
                logger.info(
                    "@%s moved back to version %s, still draining: gating it again", alias, target.version
                )
            reason = await server.wait_ready(self.settings.ROLLOUT_START_TIMEOUT_SECONDS)
            if reason is None:
                outcome = "gate_failed"
                record("gating", f"version {target.version} answers /ping; running the gate; {serving}")
                reason = await gate(
                    server.local_url, self.registry, target, decisions=alias == self.settings.MODEL_ALIAS
                )
        except Exception as exc:
            # NB: no free port, a Popen that failed (EMFILE, ENOMEM), or a bug: a failed rollout like
            # any other (counted, retried later), not a loop that dies with the rollout left "starting".
            step = "could not be started" if outcome == "start_failed" else "could not be gated"
            reason = f"its server {step} ({type(exc).__name__})"
        except BaseException:
            if server is not None:
                await self._stop(server)
            raise
        if reason is not None:
            if server is not None:
                await self._stop(server)
            self._failed[(alias, target.version)] = time.monotonic()
            ROLLOUTS.labels(alias, outcome).inc()
            what = "did not start" if outcome == "start_failed" else "failed the gate"
            logger.error(
                "rollout of @%s to version %s failed (%s): %s; %s",
                alias,
                target.version,
                outcome,
                reason,
                serving,
            )
            record("failed", f"version {target.version} {what}: {reason}; {serving}", finished_at=_now())
            return
        assert server is not None, "no reason to fail: it started and passed the gate"
        seconds = time.monotonic() - began
        self._active[alias] = server
        SERVED_VERSION.labels(alias).set(float(target.version) if target.version.isdigit() else -1)
        ROLLOUTS.labels(alias, "completed").inc()
        ROLLOUT_DURATION.labels(alias).observe(seconds)
        self._failed.pop((alias, target.version), None)
        drained = f"; version {before} is drained, then stopped" if before else ""
        record(
            "completed",
            f"version {target.version} passed the gate and serves @{alias}{drained}",
            finished_at=_now(),
            seconds=round(seconds, 3),
        )
        logger.info(
            "@%s: version %s passed the gate in %.1f s and serves%s", alias, target.version, seconds, drained
        )
        if previous is not None:
            self._drain(previous)

    def _unpublish(self, alias: str) -> None:
        self._active.pop(alias, None)
        with contextlib.suppress(KeyError):
            SERVED_VERSION.remove(alias)

    async def _stop(self, server: ScoringServer) -> None:
        await server.stop()
        self._servers.discard(server)

    # --- draining ---------------------------------------------------------------------------------

    def _drain(self, server: ScoringServer) -> None:
        entry = _Draining(server, time.monotonic())
        self._draining.append(entry)
        DRAINING.set(len(self._draining))
        self._spawn_task(self._drain_then_stop(entry), f"drain-{server.port}")

    def _revive(self, version: str) -> ScoringServer | None:
        """A still-running draining server of ``version``, taken back from the drain (a quick rollback)."""
        for entry in self._draining:
            if entry.server.version.version == version and entry.server.running():
                self._draining.remove(entry)
                DRAINING.set(len(self._draining))
                return entry.server
        return None

    def released(self, entry: _Draining) -> bool:
        """True once nobody can still be using the draining server, or its longest drain is over."""
        now = time.monotonic()
        if now - entry.since >= self.settings.ROLLOUT_DRAIN_SECONDS:
            return True
        if self.connections_to(entry.server.port) > 0:
            return False
        for report in self._reports.values():
            if now - report.at > CLIENT_TTL_SECONDS:
                continue
            # NB: a report sent before the switch may not know of it yet: wait for a later one.
            if report.at <= entry.since or entry.server.url in report.using:
                return False
        return True

    async def _drain_then_stop(self, entry: _Draining) -> None:
        # NB: polled: the release depends on the clock, facades' reports and forwarded connections.
        while entry in self._draining and not self.released(entry):  # noqa: ASYNC110
            await asyncio.sleep(DRAIN_CHECK_SECONDS)
        if entry not in self._draining:
            return  # NB: revived by a rollback
        self._draining.remove(entry)
        DRAINING.set(len(self._draining))
        logger.info(
            "version %s drained after %.1f s: stopping its server",
            entry.server.version.version,
            time.monotonic() - entry.since,
        )
        await self._stop(entry.server)
