"""Which scoring servers the facade calls: the champion's (and the challenger's), as the supervisor says.

Without ``SUPERVISOR_URL`` the facade calls ``SCORING_URL`` only, as it always did. With it, every
``SUPERVISOR_POLL_SECONDS`` the facade reads the supervisor's ``GET /state`` and calls the servers it
names directly (no proxy on the hot path), one ``ScoringClient`` each, with its own circuit breaker
and connection pool. New calls go to a new champion as soon as the state names it; the old one's
client is closed once its calls in flight have finished.

The drain handshake: each poll reports, as ``using``, the servers this facade still holds a client
for, and the supervisor stops an old server only once every facade has let go of it (or its longest
drain is over). A call that cannot connect makes the service read the state at once
(``moved_from``) and, if the champion moved meanwhile, go to the new one before it fails a request.
Until a first state arrives, and while the supervisor publishes no champion, ``SCORING_URL`` (the
supervisor's stable forwarded port) is called; when the supervisor cannot be read (or a state it
gave cannot be applied), the last state applied stays in force, counted in
``upstream_errors_total{kind="supervisor"}``, and the poller goes on whatever it meets.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
from pydantic import TypeAdapter, ValidationError

from facade.upstream.metrics import count_error
from facade.upstream.scoring import ScoringClient
from model_code.rollout import CLIENT_PARAM, STATE_PATH, USING_PARAM, Backend, Rollout, ServingState

logger = logging.getLogger(__name__)

Role = Literal["champion", "challenger"]
# Builds the client of one scoring server, and the pooled HTTP client it owns (closed when retired).
Connect = Callable[[str, Role], tuple[ScoringClient, httpx.AsyncClient]]

STATE = TypeAdapter(ServingState)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


class _BadStatus(Exception):
    """The supervisor answered ``GET /state`` with another status than 200."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _why_unreadable(exc: Exception) -> str:
    """What kind of failure it was, for the log: never the body, nor a value quoted from it.

    NB: a ValidationError's text quotes the input it refused (the supervisor's body); only where
    it failed and by which rule are named, for at most three errors.
    """
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        where = "; ".join(f"{_location(error['loc'])}: {error['type']}" for error in errors[:3])
        more = f"; {len(errors) - 3} more" if len(errors) > 3 else ""
        return f"ValidationError at {where}{more}"
    if isinstance(exc, _BadStatus):
        return f"it answered {exc.status}"
    return type(exc).__name__


def _location(loc: tuple[int | str, ...]) -> str:
    # NB: a part may be a key of the body's own (an alias in `rollouts`): named only if it looks like one.
    parts = [str(part) if isinstance(part, int) or _NAME.fullmatch(part) else "?" for part in loc]
    return ".".join(parts) or "body"


@dataclass(eq=False)
class _Server:
    backend: Backend
    client: ScoringClient
    http: httpx.AsyncClient


class ScoringBackends:
    """The scoring clients in use now, kept in step with the serving supervisor's state."""

    def __init__(
        self,
        fallback: ScoringClient,
        connect: Connect,
        supervisor: httpx.AsyncClient | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.fallback = fallback
        self._connect = connect
        self._supervisor = supervisor
        self.poll_seconds = poll_seconds
        # NB: how the supervisor tells this facade's reports from another's; nothing else.
        self.client_id = uuid.uuid4().hex
        self.state: ServingState | None = None
        self._servers: dict[tuple[Role, str], _Server] = {}
        self._champion: _Server | None = None
        self._challenger: _Server | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        # NB: servers left by the traffic whose calls in flight are not all done: still "using" them.
        self._leaving: set[_Server] = set()
        self._failing = False

    @property
    def champion(self) -> ScoringClient:
        """The client new client-facing calls go to."""
        return self._champion.client if self._champion is not None else self.fallback

    @property
    def challenger(self) -> ScoringClient | None:
        """The challenger's client, when the supervisor serves one."""
        return self._challenger.client if self._challenger is not None else None

    @property
    def challenger_backend(self) -> Backend | None:
        return self._challenger.backend if self._challenger is not None else None

    def rollout(self) -> Rollout | None:
        """The champion alias's latest rollout as the supervisor last told it (None without one)."""
        if self.state is None:
            return None
        return self.state.rollouts.get(self.state.champion_alias)

    async def start(self) -> None:
        """Read the state once (so that the first calls go straight to the champion), then keep polling."""
        if self._supervisor is None:
            return
        await self.refresh()
        self._poller = asyncio.create_task(self._poll(), name="supervisor-poller")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        held = [*self._servers.values(), *self._leaving]
        for task in self._retiring:
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for server in held:
            await server.http.aclose()
        self._servers.clear()
        self._leaving.clear()

    async def refresh(self) -> None:
        """Read the supervisor's state now; concurrent callers share one request."""
        if self._supervisor is None:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._fetch(self._supervisor))
        # NB: shielded: a caller that goes away must not cancel the others' refresh.
        await asyncio.shield(self._refreshing)

    async def moved_from(self, client: ScoringClient) -> bool:
        """After ``client`` could not be reached: read the state again; True when the champion is another."""
        if self._supervisor is None:
            return False
        await self.refresh()
        return self.champion is not client

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            # NB: _fetch keeps its own errors; this is for a bug: the poller must outlive it, or the
            # facade would stop following rollouts (and reporting for the drain) without a word.
            try:
                await self.refresh()
            except Exception as exc:  # not CancelledError (a BaseException): stop() ends the poll
                count_error("supervisor")
                logger.error(
                    "polling the serving supervisor failed (%s); polling goes on", type(exc).__name__
                )

    async def _fetch(self, supervisor: httpx.AsyncClient) -> None:
        held = [*self._servers.values(), *self._leaving]
        using = ",".join(sorted({server.backend.url for server in held}))
        try:
            response = await supervisor.get(
                STATE_PATH, params={CLIENT_PARAM: self.client_id, USING_PARAM: using}
            )
            if response.status_code != 200:
                raise _BadStatus(response.status_code)
            state = STATE.validate_json(response.content)
        except (httpx.HTTPError, ValidationError, _BadStatus) as exc:
            count_error("supervisor")
            if not self._failing:
                logger.warning(
                    "serving supervisor state unreadable (%s); keeping the last state", _why_unreadable(exc)
                )
            self._failing = True
            return
        try:
            self._apply(state)
        except Exception as exc:
            # NB: a client that cannot be made for a server the state names (or a bug): the last
            # state applied stays in force, as when the state cannot be read; never raised into the
            # request that asked for a refresh (moved_from).
            count_error("supervisor")
            if not self._failing:
                logger.warning(
                    "serving supervisor state not applied (%s); keeping the last state", type(exc).__name__
                )
            self._failing = True
            return
        if self._failing:
            logger.info("serving supervisor state readable again")
        self._failing = False

    def _apply(self, state: ServingState) -> None:
        # NB: both clients are made before anything changes: a failure leaves the last state in force.
        champion = self._adopt("champion", state.champion)
        challenger = self._adopt("challenger", state.challenger)
        self.state = state
        if champion is not self._champion and champion is not None:
            logger.info("champion: calling version %s at %s", champion.backend.version, champion.backend.url)
        self._champion = champion
        self._challenger = challenger
        for key, server in list(self._servers.items()):
            if server is not self._champion and server is not self._challenger:
                self._retire(key, server)

    def _adopt(self, role: Role, backend: Backend | None) -> _Server | None:
        if backend is None:
            return None
        key = (role, backend.url)
        server = self._servers.get(key)
        if server is not None and server.backend != backend:
            # NB: another server on a port an old one had: its client must not be reused.
            self._retire(key, server)
            server = None
        if server is None:
            client, http = self._connect(backend.url, role)
            server = self._servers[key] = _Server(backend, client, http)
        return server

    def _retire(self, key: tuple[Role, str], server: _Server) -> None:
        """Stop naming ``server``'s URL as used, and close its client once its calls in flight are done."""
        del self._servers[key]
        self._leaving.add(server)
        task = asyncio.create_task(self._close_when_idle(server))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _close_when_idle(self, server: _Server) -> None:
        try:
            await server.client.idle()
            await server.http.aclose()
        finally:
            self._leaving.discard(server)
