"""Stage 3c of training: the training distribution the model carries, for drift (PSI) monitoring.

Numeric features and the risk score get decile bins (edges from the training rows), categories
their training shares; the format is plain JSON read by ``model_code.drift`` in the facade.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from model_code.drift import SCORE_KEY
from model_code.schema import FEATURES

N_BINS = 10


def _numeric_spec(values: np.ndarray) -> dict[str, Any]:
    inner = np.quantile(values, np.linspace(0, 1, N_BINS + 1)[1:-1])
    edges = sorted({float(e) for e in inner})
    bins = np.searchsorted(np.asarray(edges), values, side="right")  # NB: bisect_right, as drift.bin_of
    proportions = np.bincount(bins, minlength=len(edges) + 1) / len(values)
    return {"kind": "numeric", "edges": edges, "proportions": proportions.tolist()}


def drift_reference(features: pd.DataFrame, risk: np.ndarray) -> dict[str, Any]:
    """The reference distribution of every schema field and of the predicted risk."""
    specs: dict[str, Any] = {}
    for feature in FEATURES:
        column = features[feature.name]
        if feature.is_numeric:
            specs[feature.name] = _numeric_spec(column.to_numpy(dtype=float))
        else:
            shares = column.value_counts(normalize=True)
            specs[feature.name] = {
                "kind": "category",
                "categories": list(feature.categories),
                "proportions": [float(shares.get(c, 0.0)) for c in feature.categories],
            }
    return {
        "features": specs,
        "score": _numeric_spec(np.asarray(risk, dtype=float)),
        "score_field": SCORE_KEY,
    }
