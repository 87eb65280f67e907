"""Population stability: the training distribution the model carries, and PSI against recent traffic.

Stdlib only: training writes the reference (``drift_reference.json``, logged with the model) and
the facade computes PSI over a sliding window of requests without numpy. Usual reading of PSI:
below 0.1 stable, 0.1 to 0.25 a moderate shift worth watching, above 0.25 a significant shift.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

PSI_MODERATE: Final = 0.1
PSI_SIGNIFICANT: Final = 0.25
REFERENCE_ARTIFACT: Final = "drift_reference.json"
SCORE_KEY: Final = "risk_score"
# NB: empty bins would make PSI infinite; the floor is the customary small proportion.
_FLOOR: Final = 1e-4


def bin_of(spec: Mapping[str, Any], value: object) -> int:
    """The bin of ``value`` under one reference entry (numeric edges or a category list)."""
    if spec["kind"] == "category":
        categories: list[str] = spec["categories"]
        return categories.index(value) if value in categories else len(categories)
    return bisect_right(spec["edges"], float(value))  # type: ignore[arg-type]


def psi(expected: Sequence[float], counts: Sequence[int]) -> float:
    """Population stability index of observed ``counts`` against ``expected`` proportions."""
    total = sum(counts)
    if total == 0:
        return 0.0
    value = 0.0
    for share, count in zip(expected, counts, strict=True):
        e = max(share, _FLOOR)
        a = max(count / total, _FLOOR)
        value += (a - e) * math.log(a / e)
    return value


def psi_by_feature(reference: Mapping[str, Any], rows: Iterable[Mapping[str, object]]) -> dict[str, float]:
    """PSI of every reference entry (features and the score) over ``rows``."""
    specs: dict[str, Mapping[str, Any]] = {**reference["features"], SCORE_KEY: reference["score"]}
    counts = {name: [0] * len(spec["proportions"]) for name, spec in specs.items()}
    for row in rows:
        for name, spec in specs.items():
            if name in row:
                index = bin_of(spec, row[name])
                if index < len(counts[name]):
                    counts[name][index] += 1
    return {name: psi(specs[name]["proportions"], counts[name]) for name in specs}
