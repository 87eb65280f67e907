"""Input checks the pyfunc runs before scoring: every rule of ``model_code.schema``, vectorised.

Messages name the field, the rule and the offending row numbers, never the submitted values:
they reach the scoring server's error body and its logs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model_code.schema import FEATURES, Feature

_MAX_ROWS_LISTED = 5


class InvalidApplicants(ValueError):
    """Raised with every (field, rule, rows) that a batch of applicants breaks."""

    def __init__(self, problems: list[tuple[str, str, list[int]]]) -> None:
        self.problems = problems
        super().__init__("; ".join(_describe(*p) for p in problems))


def _describe(name: str, rule: str, rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:_MAX_ROWS_LISTED])
    more = f" and {len(rows) - _MAX_ROWS_LISTED} more" if len(rows) > _MAX_ROWS_LISTED else ""
    where = f" (row {shown}{more})" if rows else ""
    return f"{name} {rule}{where}"


def _bad_rows(feature: Feature, column: pd.Series) -> np.ndarray:
    """Boolean mask of the rows of ``column`` that break ``feature``'s rule."""
    values = column.to_numpy()
    if feature.kind == "category":
        return ~column.isin(feature.categories).to_numpy()
    if column.dtype.kind in "iuf":
        numbers = values.astype("float64")
        bad: np.ndarray = ~np.isfinite(numbers)
        with np.errstate(invalid="ignore"):
            if feature.kind == "integer":
                bad |= np.floor(numbers) != numbers
            bad |= (numbers < feature.minimum) | (numbers > feature.maximum)
        return bad
    # NB: object or string columns (a "35" among numbers, a null, a bool) go value by value:
    # the slow path only runs for inputs that are already suspicious.
    return np.fromiter((feature.violation(_unbox(v)) is not None for v in values), bool, len(values))


def _unbox(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def validate(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the schema's columns of ``frame`` with numeric dtypes, or raise InvalidApplicants."""
    problems: list[tuple[str, str, list[int]]] = []
    missing = [f.name for f in FEATURES if f.name not in frame.columns]
    problems += [(name, "is required", []) for name in missing]
    for feature in FEATURES:
        if feature.name in missing:
            continue
        bad = _bad_rows(feature, frame[feature.name])
        if bad.any():
            problems.append((feature.name, feature.rule(), np.flatnonzero(bad).tolist()))
    if problems:
        raise InvalidApplicants(problems)
    clean = frame.loc[:, [f.name for f in FEATURES]].reset_index(drop=True)
    for feature in FEATURES:
        if feature.kind == "integer":
            clean[feature.name] = clean[feature.name].astype("int64")
        elif feature.kind == "number":
            clean[feature.name] = clean[feature.name].astype("float64")
        else:
            clean[feature.name] = clean[feature.name].astype(object)
    return clean
