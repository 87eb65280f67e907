"""Client of the MLflow tracking server's REST API: the registered version of a served run, and its files.

Endpoints used: ``GET /api/2.0/mlflow/model-versions/search`` (run id to version),
``GET /api/2.0/mlflow/runs/get`` (the run's metrics and params) and ``GET /get-artifact``
(a file the run logged at its artifact root: the drift reference, the model card). Every failure
becomes a RegistryUnavailable (503): the facade never reports a version it could not confirm.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from facade.errors import RegistryUnavailable
from facade.upstream.metrics import UPSTREAM_REQUEST_DURATION, count_error
from model_code.tracking import RUN_ID, TEST_METRIC_PREFIX, THRESHOLD_PARAM, version_of_run

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

SEARCH_VERSIONS = "/api/2.0/mlflow/model-versions/search"
GET_RUN = "/api/2.0/mlflow/runs/get"
# NB: the tracking server's own artifact download route (what its UI uses), not under /api/2.0. With
# `--serve-artifacts` it reads the run's mlflow-artifacts:/ root through the server; it takes
# `run_uuid` (MLflow 3.17 also reads `run_id`) and a path relative to the run's artifact root.
GET_ARTIFACT = "/get-artifact"
# NB: the artifacts read here are a few kilobytes; anything far larger is not what training logs.
MAX_ARTIFACT_BYTES = 1024 * 1024


class _ModelVersion(BaseModel):
    name: str
    version: str
    run_id: str = ""


class _SearchResponse(BaseModel):
    # NB: the REST API omits empty lists entirely, so "no versions" arrives as {}.
    model_versions: list[_ModelVersion] = []


class _KeyValue(BaseModel):
    key: str
    value: str | float


class _RunData(BaseModel):
    metrics: list[_KeyValue] = []
    params: list[_KeyValue] = []


class _Run(BaseModel):
    data: _RunData = _RunData()


class _RunResponse(BaseModel):
    run: _Run


@dataclass(frozen=True)
class RunInfo:
    """What /model/info reports about a training run."""

    test_metrics: dict[str, float]
    decision_threshold: float | None


class RegistryClient:
    """Maps run ids to registered versions of one model (cached forever) and reads runs."""

    def __init__(self, http: httpx.AsyncClient, model_name: str) -> None:
        self._http = http
        self._model_name = model_name
        # NB: a run's registered version never changes, so the cache needs no expiry; it only
        # ever holds runs the scoring server actually answered with.
        self._versions: dict[str, str] = {}
        self._first_seen: dict[str, datetime] = {}
        # NB: a run's logged artifacts do not change either; only successes are kept.
        self._artifacts: dict[tuple[str, str], bytes] = {}
        # NB: nor do its params: the decision threshold each decision record names.
        self._thresholds: dict[str, float | None] = {}
        # NB: the lookups under way, by (what, run): concurrent first callers for a run (every
        # request just after a rollout) share one request to the tracking server.
        self._in_flight: dict[tuple[str, str], asyncio.Task[Any]] = {}

    @property
    def model_name(self) -> str:
        return self._model_name

    async def version_for_run(self, run_id: str) -> str:
        """The registered version of ``MODEL_NAME`` built from ``run_id`` (the highest, if several)."""
        if (version := self._versions.get(run_id)) is not None:
            return version
        return await self._shared(("version", run_id), lambda: self._look_up_version(run_id))

    async def _shared(self, key: tuple[str, str], fetch: Callable[[], Awaitable[_T]]) -> _T:
        """``fetch()``, or the same fetch already under way for ``key``: one request, every caller its answer.

        NB: a task, shielded, so that a caller who stops waiting does not cancel it for the others.
        """
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(task)

    def _done(self, key: tuple[str, str], task: asyncio.Task[Any]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        if not task.cancelled():
            task.exception()  # NB: retrieved, even when every caller stopped waiting

    async def _look_up_version(self, run_id: str) -> str:
        if not RUN_ID.fullmatch(run_id):
            raise RegistryUnavailable("The scoring server reported a malformed run id.")
        query = {"filter": f"name='{self._model_name}' and run_id='{run_id}'"}
        body = await self._get(SEARCH_VERSIONS, query)
        try:
            found = _SearchResponse.model_validate_json(body).model_versions
        except ValidationError:
            raise self._bad_response(SEARCH_VERSIONS) from None
        version = version_of_run(
            v.version for v in found if v.name == self._model_name and v.run_id == run_id
        )
        if version is None:
            count_error("registry")
            logger.warning("served run %s is not a registered version of %s", run_id, self._model_name)
            raise RegistryUnavailable(
                f"The served model's run is not a registered version of {self._model_name}."
            )
        self._versions[run_id] = version
        self._first_seen.setdefault(run_id, datetime.now(UTC))
        return version

    def first_seen(self, run_id: str) -> datetime:
        """When ``version_for_run`` first resolved ``run_id``, i.e. when it was first seen served."""
        return self._first_seen[run_id]

    async def run_info(self, run_id: str) -> RunInfo:
        """The run's ``test_*`` metrics (prefix removed) and its decision threshold param."""
        if not RUN_ID.fullmatch(run_id):
            raise RegistryUnavailable("The scoring server reported a malformed run id.")
        body = await self._get(GET_RUN, {"run_id": run_id})
        try:
            data = _RunResponse.model_validate_json(body).run.data
        except ValidationError:
            raise self._bad_response(GET_RUN) from None
        metrics = {
            m.key.removeprefix(TEST_METRIC_PREFIX): value
            for m in data.metrics
            if m.key.startswith(TEST_METRIC_PREFIX) and (value := _finite_float(m.value)) is not None
        }
        params = {p.key: p.value for p in data.params}
        return RunInfo(test_metrics=metrics, decision_threshold=_finite_float(params.get(THRESHOLD_PARAM)))

    async def decision_threshold(self, run_id: str) -> float | None:
        """The run's ``decision_threshold`` param (None if it logged none), read once per run."""
        if run_id in self._thresholds:
            return self._thresholds[run_id]
        return await self._shared(("threshold", run_id), lambda: self._look_up_threshold(run_id))

    async def _look_up_threshold(self, run_id: str) -> float | None:
        threshold = (await self.run_info(run_id)).decision_threshold
        self._thresholds[run_id] = threshold
        return threshold

    async def run_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of ``path`` at the run's artifact root (cached per run); RegistryUnavailable if not."""
        if (cached := self._artifacts.get((run_id, path))) is not None:
            return cached
        if not RUN_ID.fullmatch(run_id):
            raise RegistryUnavailable("The scoring server reported a malformed run id.")
        body = await self._get(GET_ARTIFACT, {"path": path, "run_uuid": run_id})
        if len(body) > MAX_ARTIFACT_BYTES:
            raise self._bad_response(GET_ARTIFACT)
        self._artifacts[(run_id, path)] = body
        return body

    async def _get(self, endpoint: str, params: dict[str, str]) -> bytes:
        start = time.perf_counter()
        try:
            response = await self._http.get(endpoint, params=params)
        except httpx.HTTPError as exc:
            count_error("registry")
            logger.warning("model registry %s: %s", endpoint, type(exc).__name__)
            raise RegistryUnavailable("The model registry is unreachable.") from exc
        finally:
            UPSTREAM_REQUEST_DURATION.labels(endpoint).observe(time.perf_counter() - start)
        if response.status_code != 200:
            count_error("registry")
            logger.warning("model registry %s answered %d", endpoint, response.status_code)
            raise RegistryUnavailable(f"The model registry answered {response.status_code}.")
        return response.content

    def _bad_response(self, endpoint: str) -> RegistryUnavailable:
        count_error("registry")
        logger.warning("model registry %s answered an unexpected body", endpoint)
        return RegistryUnavailable("The model registry answered an unexpected body.")


def _finite_float(value: str | float | None) -> float | None:
    """``value`` as a finite float, else None.

    NB: NaN and infinities cannot be sent as JSON; leave them out rather than fail /model/info.
    """
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) else None
