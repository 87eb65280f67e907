"""The model's output contract as pydantic: the strict reading of a scored row and its public fields.

Every model here is built from ``model_code.contract``: ``ScoredRow`` parses one record of the
scoring server's answer (every column, bounds enforced, unknown keys ignored), its reasons as
``ReasonRow`` dicts; ``ReasonPublic`` is one principal reason as the public API documents it, and
``output_fields()`` gives the public response (``facade.schemas.PredictionPublic``) the same
columns with the same types and descriptions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from typing_extensions import TypedDict

from model_code.contract import OUTPUTS, PUBLIC_OUTPUTS, REASON_FIELDS, REJECTED, Output
from model_code.reasons import REASONS_BY_CODE


def _field(output: Output, reason: type[Any] | None = None) -> tuple[Any, Any]:
    """The annotation and Field of one contract value: its type, bounds and description."""
    if output.kind == "category":
        # NB: a Literal built at run time from the contract's categories; exact and case-sensitive.
        annotation: Any = Literal.__getitem__(output.categories)
        return annotation, Field(description=output.description)
    if output.kind == "reasons":
        assert reason is not None
        return list[reason], Field(max_length=output.max_items, description=output.description)  # type: ignore[valid-type]
    if output.kind == "string":
        return str, Field(pattern=output.pattern, description=output.description)
    bounds: dict[str, Any] = {"le": output.maximum}
    bounds["gt" if output.exclusive_minimum else "ge"] = output.minimum
    if output.kind == "integer":
        return int, Field(description=output.description, **bounds)
    return float, Field(allow_inf_nan=False, description=output.description, **bounds)


if TYPE_CHECKING:

    class ReasonRow(TypedDict):
        code: str
        description: str
        contribution: float
else:
    # NB: a TypedDict, not a model: a 10,000-row answer holds up to 40,000 reasons, and pydantic
    # validates these in Rust without building an object for each (models cost 2.5 times as much).
    ReasonRow = TypedDict("ReasonRow", {item.name: Annotated[_field(item)] for item in REASON_FIELDS})

_WORDING = {code: reason.description for code, reason in REASONS_BY_CODE.items()}


class _Reason(BaseModel):
    model_config = ConfigDict(frozen=True)


class _RowRules(BaseModel):
    """The rules across columns that the per-column types cannot say, and the reasons' wording."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="after")
    def _principal_reasons(self) -> _RowRules:
        # NB: one pass a row, after the types are checked (so every code is in the catalogue).
        reasons: list[ReasonRow] = self.reasons  # type: ignore[attr-defined]
        codes = set()
        previous = math.inf
        for reason in reasons:
            # NB: the upstream's description is replaced by the catalogue's (model_code.reasons), so
            # a model can never put words of its own into an adverse-action notice.
            reason["description"] = _WORDING[reason["code"]]
            if reason["contribution"] > previous:
                raise ValueError("reasons must come largest contribution first")
            previous = reason["contribution"]
            codes.add(reason["code"])
        if len(codes) != len(reasons):
            raise ValueError("reason codes must be distinct")
        # NB: the API promises reasons with every rejection (US Regulation B asks for the principal
        # reasons of a denial); an adverse decision without them is not passed on.
        if self.prediction == REJECTED and not reasons:  # type: ignore[attr-defined]
            raise ValueError("a rejection must carry at least one reason")
        return self


if TYPE_CHECKING:
    # NB: mypy cannot see fields made by create_model; these stubs name the classes for it, and
    # the columns read as Any (their types are the contract's, checked at run time).
    class ReasonPublic(BaseModel):
        code: str
        description: str
        contribution: float

    class ScoredRow(BaseModel):
        def __getattr__(self, name: str) -> Any: ...
else:
    ReasonPublic = create_model(
        "ReasonPublic",
        __base__=_Reason,
        __doc__=(
            "One principal reason for the decision: a stable code, its plain-language text and its weight."
        ),
        **{item.name: _field(item) for item in REASON_FIELDS},
    )
    ScoredRow = create_model(
        "ScoredRow",
        __base__=_RowRules,
        __doc__="One record of the scoring server's answer, read strictly against the output contract.",
        **{output.name: _field(output, ReasonRow) for output in OUTPUTS},
    )


def output_fields() -> dict[str, tuple[Any, Any]]:
    """The public columns of the contract as ``create_model`` fields, in contract order."""
    return {output.name: _field(output, ReasonPublic) for output in PUBLIC_OUTPUTS}


def public_values(row: ScoredRow) -> dict[str, Any]:
    """The public columns of a parsed row, as the answers' TypedDict twins of ``PredictionPublic`` hold them.

    NB: read from ``__dict__``: the row was validated when it was parsed, and this runs for every
    row of a 10,000-row batch.
    """
    values = row.__dict__
    return {output.name: values[output.name] for output in PUBLIC_OUTPUTS}
