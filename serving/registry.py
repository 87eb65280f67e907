"""The supervisor's view of the MLflow registry over REST: the version an alias names, and a run's version.

Endpoints used: ``GET /api/2.0/mlflow/registered-models/alias`` (the version an alias points at) and
``GET /api/2.0/mlflow/model-versions/search`` (the versions registered from a run). mlflow is not
imported: the supervisor only starts `mlflow models serve` processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from model_code.tracking import version_of_run

GET_ALIAS = "/api/2.0/mlflow/registered-models/alias"
SEARCH_VERSIONS = "/api/2.0/mlflow/model-versions/search"
# NB: MLflow answers an unknown model with 404 RESOURCE_DOES_NOT_EXIST and an unknown alias of a known
# model with 400 INVALID_PARAMETER_VALUE ("Registered model alias ... not found").
NO_SUCH_ALIAS = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}

Model = TypeVar("Model", bound=BaseModel)


class RegistryError(Exception):
    """The registry could not be read; the message says how, without echoing a body."""


@dataclass(frozen=True)
class Version:
    """A registered version and the run it was built from."""

    version: str
    run_id: str


class _ModelVersion(BaseModel):
    name: str
    version: str
    run_id: str = ""


class _AliasResponse(BaseModel):
    model_version: _ModelVersion


class _SearchResponse(BaseModel):
    # NB: the REST API omits empty lists entirely.
    model_versions: list[_ModelVersion] = []


class _Error(BaseModel):
    error_code: str = ""


class Registry:
    """Reads one registered model's aliases and versions through a pooled ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient, model_name: str) -> None:
        self._http = http
        self.model_name = model_name

    async def alias(self, alias: str) -> Version | None:
        """The version ``alias`` points at, or None when the model or the alias does not exist."""
        response = await self._get(GET_ALIAS, {"name": self.model_name, "alias": alias})
        if response.status_code in (400, 404):
            try:
                code = _Error.model_validate_json(response.content).error_code
            except ValidationError:
                code = ""
            if code in NO_SUCH_ALIAS:
                return None
        body = self._body(response, _AliasResponse)
        return Version(version=body.model_version.version, run_id=body.model_version.run_id)

    async def version_of_run(self, run_id: str) -> str | None:
        """The version the facade reports for answers from ``run_id`` (the highest registered from it)."""
        query = {"filter": f"name='{self.model_name}' and run_id='{run_id}'"}
        found = self._body(await self._get(SEARCH_VERSIONS, query), _SearchResponse).model_versions
        return version_of_run(v.version for v in found if v.name == self.model_name and v.run_id == run_id)

    async def _get(self, endpoint: str, params: dict[str, str]) -> httpx.Response:
        try:
            return await self._http.get(endpoint, params=params)
        except httpx.HTTPError as exc:
            raise RegistryError(f"the registry is unreachable ({type(exc).__name__})") from exc

    @staticmethod
    def _body(response: httpx.Response, model: type[Model]) -> Model:
        if response.status_code != 200:
            raise RegistryError(f"the registry answered {response.status_code}")
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            raise RegistryError("the registry answered an unexpected body") from None
