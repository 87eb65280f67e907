"""``require_scope``: the FastAPI dependency that admits a request to a protected route, and the schemes
it declares in the OpenAPI document.

In this order: who is calling (401), may it call this route (403), is its quota left (429). The
principal is left on ``request.state.principal`` and its name in the access log (``client``);
the RateLimit fields go on the answer whatever it turns out to be.

NB: ``async def``, as every dependency here: FastAPI runs a plain ``def`` one in its thread pool.
NB: no ``from __future__ import annotations`` in this module: FastAPI evaluates a dependency's
annotations in its module's globals, and ``admit``'s name the closure's ``scope``.
"""

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Annotated, cast

from fastapi import Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, OAuth2

from facade.core.middleware import add_response_headers, annotate_access_log
from facade.core.security import Principal
from facade.security.access import AccessControl
from facade.security.scopes import SCOPES

API_KEY_HEADER = "X-API-Key"
# NB: the token URL is the deployment's (OAUTH_TOKEN_URL); ``facade.api.openapi`` writes it in, and
# drops each scheme while what it describes is not configured.
TOKEN_URL_PLACEHOLDER = "OAUTH_TOKEN_URL"
OAUTH2_SCHEME = "OAuth2ClientCredentials"

# NB: auto_error=False everywhere: a missing credential must become the facade's own 401 problem,
# and only when that kind of credential is configured.
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="An API key from API_KEYS or API_KEYS_FILE.",
)
bearer_token = HTTPBearer(
    auto_error=False, description="The same API key sent as `Authorization: Bearer <key>`."
)
oauth2_client_credentials = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL_PLACEHOLDER, scopes=SCOPES)
    ),
    scheme_name=OAUTH2_SCHEME,
    description="An access token (a JWT) from the identity provider, as `Authorization: Bearer <token>`.",
    auto_error=False,
)


@cache
def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """The dependency admitting a caller that holds ``scope``: ``Depends(require_scope(SCOPE_PREDICT))``.

    With no credentials configured it admits everyone as the anonymous principal (every scope).
    NB: cached per scope, so that a route naming it twice (router and handler) runs it once.
    """

    async def admit(
        request: Request,
        api_key: Annotated[str | None, Security(api_key_header)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_token)],
        _token: Annotated[str | None, Security(oauth2_client_credentials, scopes=[scope])],
    ) -> Principal:
        access = cast(AccessControl, request.state.access)
        principal = await access.authenticate(request, api_key, bearer.credentials if bearer else None)
        request.state.principal = principal
        annotate_access_log(request, client=principal.name)
        access.authorize(principal, scope)
        verdict = await access.limit(request, principal)
        if verdict is not None:
            add_response_headers(request, verdict.headers)
            if not verdict.allowed:
                raise access.refused(verdict)
        return principal

    admit.__name__ = f"require_scope_{scope.replace(':', '_')}"
    return admit
