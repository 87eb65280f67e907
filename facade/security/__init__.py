"""STAND-IN for the client identity and scopes that issue 17 builds, to the interface agreed for it.

Who a request comes from (``Principal``) and what it may do (scopes), as the decision records
need them: their read routes depend on ``require_scope(SCOPE_DECISIONS_READ)`` and each record
names ``Principal.name`` as its client. Issue 17 builds the real thing (named API keys, tokens,
certificates, per-key scopes); at merge its implementation replaces this module whole.

What this stand-in does until then, from today's unnamed API keys: with no key configured every
request is ``anonymous`` with every scope; with keys on, a request with a valid key is the
principal named ``api-key`` with every scope, and one without is refused with 401 as before. So
403 never happens here: ``require_scope`` does check the scope, which a test shows by giving a
principal without it through ``current_principal`` (a dependency the test overrides).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Literal, cast

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from facade.api.deps import API_KEY_HEADER, api_key_header, bearer_token
from facade.core.problems import ProblemError
from facade.core.security import ApiKeys
from facade.errors import Unauthorized

SCOPE_PREDICT = "credit:predict"
SCOPE_DECISIONS_READ = "credit:decisions:read"
SCOPE_MODEL_READ = "credit:model:read"
ALL_SCOPES = frozenset({SCOPE_PREDICT, SCOPE_DECISIONS_READ, SCOPE_MODEL_READ})

# NB: where the authenticated principal is left for the access log and the decision records.
PRINCIPAL_STATE = "principal"


@dataclass(frozen=True)
class Principal:
    """Who is asking: a name safe to log and record (never a secret), how they proved it, and their scopes."""

    name: str
    kind: Literal["api_key", "token", "certificate", "anonymous"]
    scopes: frozenset[str]


ANONYMOUS = Principal("anonymous", "anonymous", ALL_SCOPES)
# STAND-IN: today's keys have no names; every valid key is this one principal.
API_KEY_PRINCIPAL = Principal("api-key", "api_key", ALL_SCOPES)


class Forbidden(ProblemError):
    """Authenticated, but without the scope the route needs."""

    status = 403
    slug = "forbidden"
    title = "Missing permission"


async def current_principal(
    request: Request,
    api_key: Annotated[str | None, Security(api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_token)],
) -> Principal:
    """The request's principal (STAND-IN: from today's API keys); 401 when keys are on and none is valid."""
    keys = cast(ApiKeys, request.app.state.api_keys)
    if not keys.enabled:
        principal = ANONYMOUS
    else:
        presented = api_key or (bearer.credentials if bearer is not None else None)
        if presented is None or not keys.accepts(presented):
            raise Unauthorized(f"Send a valid API key in the {API_KEY_HEADER} header or as a bearer token.")
        principal = API_KEY_PRINCIPAL
    setattr(request.state, PRINCIPAL_STATE, principal)
    return principal


@cache
def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting principals with ``scope`` (403 otherwise); one per scope."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if scope not in principal.scopes:
            raise Forbidden(f"This needs the {scope} permission, which your credentials do not carry.")
        return principal

    return dependency


def client_name(request: Request) -> str:
    """The name a decision record gives its client: the principal left on the request by the auth
    dependency, else (STAND-IN, for routes still guarded by ``require_api_key``) ``api-key`` when
    keys are on (the request passed the check) and ``anonymous`` when they are off."""
    principal = getattr(request.state, PRINCIPAL_STATE, None)
    if isinstance(principal, Principal):
        return principal.name
    keys = cast(ApiKeys, request.app.state.api_keys)
    return API_KEY_PRINCIPAL.name if keys.enabled else ANONYMOUS.name
