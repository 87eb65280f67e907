"""Schemathesis against the facade's own OpenAPI document, every check, with the scoring server mocked.

In-process (ASGI) with API keys on, so the auth checks run too; bounded and derandomized so that
CI is deterministic: at most MAX_EXAMPLES generated cases per operation and test phase.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import respx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans

from facade.core.config import Settings
from facade.core.security import unnamed_key
from facade.main import create_app
from tests.facade.facade_fakes import (
    RUN_BODY,
    SCORING_URL,
    TRACKING_URI,
    fake_model,
    run_artifacts,
    search_versions,
)
from tests.figures import record

MAX_EXAMPLES = 50
API_KEY = "schemathesis-key-0123456789"
CASES_RUN: list[str] = []
FAILURES: list[str] = []


# NB: loaded when the module is collected rather than through schemathesis.pytest.from_fixture,
# which sets pytest's private Node._nodeid and fails under pytest 9.
_settings = Settings(SCORING_URL=SCORING_URL, MLFLOW_TRACKING_URI=TRACKING_URI, MAX_BATCH_SIZE=5)
# NB: a batch over maxItems (MAX_BATCH_SIZE) is refused with 413, as the README documents; the
# check's default list of rejection statuses lacks 413, the rest of the list is its default.
_config = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422"),
                    *("428", "429", "5XX"),
                ]
            }
        }
    }
)
schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(_settings.model_copy(update={"_api_keys": (unnamed_key(API_KEY),)})),
    config=_config,
)


@pytest.fixture(scope="module", autouse=True)
def mocked_upstream(request: pytest.FixtureRequest) -> Iterator[respx.MockRouter]:
    """The scoring server and registry mocked for the whole module; the app's lifespan ends with it."""
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{SCORING_URL}/ping").respond(200, text="\n")
        router.post(f"{SCORING_URL}/invocations").mock(side_effect=fake_model())
        router.get(f"{TRACKING_URI}/api/2.0/mlflow/model-versions/search").mock(side_effect=search_versions)
        router.get(f"{TRACKING_URI}/api/2.0/mlflow/runs/get").respond(200, json=RUN_BODY)
        router.get(f"{TRACKING_URI}/get-artifact").mock(side_effect=run_artifacts)
        yield router
    shutdown_lifespans()
    operations = len(set(CASES_RUN))
    record(
        request.config,
        "schemathesis (tests/facade/test_api_schemathesis.py)",
        f"{len(CASES_RUN)} cases over {operations} operations, all checks; {len(FAILURES)} failing cases",
    )


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi(case: schemathesis.Case[Any]) -> None:
    CASES_RUN.append(case.operation.label)
    try:
        case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=cast("list[Any]", CHECKS.get_all()))
    except Exception:
        FAILURES.append(case.operation.label)
        raise
