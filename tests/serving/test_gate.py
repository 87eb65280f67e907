"""The gate and the registry reads behind it: each reason a new server is refused, in words."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from serving.gate import gate
from serving.registry import Registry, RegistryError, Version

TRACKING = "http://mlflow.test"
SERVER = "http://127.0.0.1:41000"
RUN = "a" * 32
EXPECTED = Version("7", RUN)


def _answer(*rows: tuple[str, str]) -> httpx.Response:
    return httpx.Response(200, json={"predictions": [{"prediction": p, "model_run_id": r} for p, r in rows]})


def _verdict(invocations: httpx.Response, registered: list[dict[str, str]]) -> str | None:
    async def check() -> str | None:
        async with httpx.AsyncClient(base_url=TRACKING) as http:
            return await gate(SERVER, Registry(http, "credit-score"), EXPECTED)

    with respx.mock(assert_all_called=False) as router:
        router.post(f"{SERVER}/invocations").mock(return_value=invocations)
        router.get(f"{TRACKING}/api/2.0/mlflow/model-versions/search").respond(
            200, json={"model_versions": registered}
        )
        return asyncio.run(check())


REGISTERED = [{"name": "credit-score", "version": "7", "run_id": RUN}]


def test_a_server_that_decides_the_readme_applicants_right_from_the_expected_run_passes() -> None:
    assert _verdict(_answer(("APPROVED", RUN), ("REJECTED", RUN)), REGISTERED) is None


@pytest.mark.parametrize(
    ("answer", "registered", "reason"),
    [
        (
            _answer(("REJECTED", RUN), ("REJECTED", RUN)),
            REGISTERED,
            "it decided the README's approved applicant REJECTED, not APPROVED",
        ),
        (
            _answer(("APPROVED", RUN), ("APPROVED", RUN)),
            REGISTERED,
            "it decided the README's rejected applicant APPROVED, not REJECTED",
        ),
        (_answer(("APPROVED", "b" * 32), ("REJECTED", "b" * 32)), REGISTERED, "not version 7's run"),
        (
            _answer(("APPROVED", RUN), ("REJECTED", RUN)),
            [*REGISTERED, {"name": "credit-score", "version": "8", "run_id": RUN}],
            "its run maps to version 8, so its answers would not report 7",
        ),
        (httpx.Response(500, json={"stack_trace": "secret"}), REGISTERED, "/invocations answered 500"),
        (
            httpx.Response(200, json={"predictions": [{"x": 1}]}),
            REGISTERED,
            "without a prediction and model_run_id",
        ),
        (_answer(("APPROVED", RUN)), REGISTERED, "answered 1 rows for 2"),
    ],
    ids=[
        "rejects-the-approved",
        "approves-the-rejected",
        "another-run",
        "registered-twice",
        "500",
        "garbled",
        "short",
    ],
)
def test_a_server_is_refused_with_its_reason(
    answer: httpx.Response, registered: list[dict[str, str]], reason: str
) -> None:
    verdict = _verdict(answer, registered)

    assert verdict is not None
    assert reason in verdict
    assert "secret" not in verdict, "never a body of the server's"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            400,
            {
                "error_code": "INVALID_PARAMETER_VALUE",
                "message": "Registered model alias champion not found.",
            },
        ),
        (404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=x not found"}),
    ],
)
def test_an_alias_or_model_that_does_not_exist_is_none(status: int, body: dict[str, str]) -> None:
    async def read() -> Version | None:
        async with httpx.AsyncClient(base_url=TRACKING) as http:
            return await Registry(http, "credit-score").alias("champion")

    with respx.mock() as router:
        router.get(f"{TRACKING}/api/2.0/mlflow/registered-models/alias").respond(status, json=body)
        assert asyncio.run(read()) is None


def test_a_registry_that_fails_is_an_error_not_an_absent_alias() -> None:
    async def read() -> Version | None:
        async with httpx.AsyncClient(base_url=TRACKING) as http:
            return await Registry(http, "credit-score").alias("champion")

    with respx.mock() as router:
        router.get(f"{TRACKING}/api/2.0/mlflow/registered-models/alias").respond(503, text="down")
        with pytest.raises(RegistryError, match="answered 503"):
            asyncio.run(read())
