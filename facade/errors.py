"""The errors the facade raises on purpose, each answered as its own problem type (RFC 9457).

Callers catch the family they mean; the upstream clients translate httpx's errors into these
once, at the boundary (``raise ModelUnavailable(...) from exc``). The tree, with the status each
answers::

    ProblemError (facade.core.problems)
    ├── UnsupportedMediaType          415  the body is not JSON
    ├── BatchTooLarge                 413  more applications than MAX_BATCH_SIZE
    ├── Unauthorized                  401  missing or unverifiable credentials (WWW-Authenticate)
    ├── InsufficientScope             403  the credentials lack the route's scope (WWW-Authenticate)
    ├── QuotaExceeded                 429  the client's rate limit (Retry-After, RateLimit fields)
    ├── CredentialsUnverifiable       503  the identity provider's keys cannot be had (Retry-After)
    ├── Overloaded                    503  MAX_IN_FLIGHT predictions in flight (Retry-After: 1)
    ├── RecordUnavailable             503  the decision could not be recorded, so it is not returned
    ├── RecordsUnreadable             503  the decision records database cannot be read now
    ├── RecordNotFound                404  no decision record has this application id
    ├── RecordInvalid                 409  a stored record no longer fits the record schema (edited)
    ├── RecordsOff                    501  decision records are not configured on this server
    └── UpstreamError                      the scoring server or the registry failed us
        ├── ModelUnavailable          503  unreachable (Retry-After)
        │   ├── CircuitOpen                known to be down: refused without calling it
        │   ├── RegistryUnavailable        the tracking server cannot confirm the version
        │   └── NotReady                   readiness failed, or the service is shutting down
        ├── ModelTimeout              504  no answer within the read deadline
        ├── BadUpstreamResponse       502  an error status or an answer breaking the output contract
        └── ModelRejectedInput        422  the model refused input the facade accepted

Outside the tree: request validation errors (422, 400 for malformed JSON) are worded by
``facade.api.validation``, and a body over MAX_BODY_BYTES is ``facade.core.middleware.BodyTooLarge``
(413), a Starlette HTTPException so that FastAPI's body reader passes it on.
"""

from __future__ import annotations

from collections.abc import Sequence

from facade.core.problems import FieldError, ProblemError, ProblemResponse, problem_response

# NB: how long a client should wait before retrying a 503; the scoring server restarts in seconds.
RETRY_AFTER_SECONDS = 5
# NB: a shed request may succeed as soon as one in flight finishes (tens of milliseconds).
OVERLOAD_RETRY_AFTER_SECONDS = 1
# NB: the records database is down for a restart or a failover: seconds, like the scoring server.
RECORD_RETRY_AFTER_SECONDS = 2


class UnsupportedMediaType(ProblemError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported Media Type"


class BatchTooLarge(ProblemError):
    status = 413
    slug = "batch-too-large"
    title = "Batch too large"

    def __init__(self, cap: int) -> None:
        super().__init__(
            f"A batch holds at most {cap} applications; split it into smaller batches.",
            [FieldError(field="applications", rule=f"must contain at most {cap} applications")],
        )


class Unauthorized(ProblemError):
    """No credentials, or ones that do not verify; ``challenge`` is the WWW-Authenticate value."""

    status = 401
    slug = "unauthorized"
    title = "Missing or invalid credentials"

    def __init__(self, detail: str, challenge: str) -> None:
        super().__init__(detail)
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": self.challenge}


class InsufficientScope(ProblemError):
    status = 403
    slug = "insufficient-scope"
    title = "Insufficient scope"

    def __init__(self, scope: str, challenge: str) -> None:
        super().__init__(f"This route needs the scope {scope}, which these credentials do not hold.")
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": self.challenge}


class QuotaExceeded(ProblemError):
    """The client used up a window of its rate limit (the RateLimit fields travel on every answer)."""

    status = 429
    slug = "quota-exceeded"
    title = "Quota exceeded"

    def __init__(self, retry_after: int, violated_policies: Sequence[str]) -> None:
        super().__init__(
            f"This client's quota ({', '.join(violated_policies)}) is used up; retry after {retry_after} s."
        )
        self.retry_after = max(1, retry_after)
        self.violated_policies = list(violated_policies)

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}

    def response(self, request_path: str) -> ProblemResponse:
        # NB: `violated-policies` is the extension member the RateLimit draft defines for this type.
        return problem_response(
            request_path,
            self.status,
            title=self.title,
            slug=self.slug,
            detail=self.detail,
            headers=self.headers,
            extensions={"violated-policies": self.violated_policies},
        )


class CredentialsUnverifiable(ProblemError):
    """A bearer token arrived but the identity provider's keys cannot be fetched to check it."""

    status = 503
    slug = "credentials-unverifiable"
    title = "Credentials cannot be verified now"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class Overloaded(ProblemError):
    """More predictions in flight than MAX_IN_FLIGHT: shed at once rather than queued."""

    status = 503
    slug = "overloaded"
    title = "Too many predictions in flight"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(OVERLOAD_RETRY_AFTER_SECONDS)}


class RecordUnavailable(ProblemError):
    """A decision whose record could not be written: refused, never returned (fail closed)."""

    status = 503
    slug = "decision-record-unavailable"
    title = "Decision could not be recorded"

    def __init__(self, detail: str, retry_after: int = RECORD_RETRY_AFTER_SECONDS) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class RecordsUnreadable(ProblemError):
    status = 503
    slug = "decision-records-unreadable"
    title = "Decision records cannot be read now"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(RECORD_RETRY_AFTER_SECONDS)}


class RecordNotFound(ProblemError):
    status = 404
    slug = "decision-record-not-found"
    title = "Decision record not found"


class RecordInvalid(ProblemError):
    """A stored record that does not match the record schema: it was changed in the database.

    NB: named by its ``seq`` only; its values (personal data, and whatever was written there) are
    never repeated.
    """

    status = 409
    slug = "decision-record-invalid"
    title = "Decision record does not match the record schema"


class RecordsOff(ProblemError):
    status = 501
    slug = "decision-records-off"
    title = "Decision records are off"


class UpstreamError(ProblemError):
    """Raised at the boundary to the scoring server or the model registry."""


class ModelUnavailable(UpstreamError):
    status = 503
    slug = "model-unavailable"
    title = "Model unavailable"

    def __init__(
        self,
        detail: str,
        errors: Sequence[FieldError] | None = None,
        retry_after: int = RETRY_AFTER_SECONDS,
    ) -> None:
        super().__init__(detail, errors)
        self.retry_after = max(1, retry_after)

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class CircuitOpen(ModelUnavailable):
    """The scoring server is known to be down: answered at once, without calling it."""

    slug = "circuit-open"
    title = "Model unavailable (circuit open)"


class RegistryUnavailable(ModelUnavailable):
    slug = "registry-unavailable"
    title = "Model registry unavailable"


class NotReady(ModelUnavailable):
    slug = "not-ready"
    title = "Not ready"


class ModelTimeout(UpstreamError):
    status = 504
    slug = "model-timeout"
    title = "Model timed out"


class BadUpstreamResponse(UpstreamError):
    status = 502
    slug = "bad-upstream-response"
    title = "Bad response from the scoring server"


class ModelRejectedInput(UpstreamError):
    status = 422
    slug = "model-rejected-input"
    title = "The model rejected the applicant data"
