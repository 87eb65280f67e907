"""Who may call, and how much: the principal, the API's scopes and the dependency that enforces both.

Routes protect themselves with ``Depends(require_scope(SCOPE_...))``, which returns the caller's
``Principal`` (``name``: the API key's name, the token's subject or the certificate's common name;
``"anonymous"`` when nothing is configured). See ``facade.security.access`` for the order in which
credentials are tried and ``facade.core.ratelimit`` for the rate limits.
"""

from facade.core.security import Principal
from facade.security.dependencies import require_scope
from facade.security.scopes import ALL_SCOPES, SCOPE_DECISIONS_READ, SCOPE_MODEL_READ, SCOPE_PREDICT

__all__ = [
    "ALL_SCOPES",
    "SCOPE_DECISIONS_READ",
    "SCOPE_MODEL_READ",
    "SCOPE_PREDICT",
    "Principal",
    "require_scope",
]
