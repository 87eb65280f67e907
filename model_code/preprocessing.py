"""Feature preparation shared by training and the pyfunc: engineered ratios, one-hot encoding, and
the monotone index the constrained forest splits on.

Everything here is derived from ``model_code.schema`` so that the pipeline cannot drift from the
applicant fields the API accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from model_code.schema import (
    FEATURES_BY_NAME,
    NUMERIC_FEATURES,
    RATIOS,
    SCORED_CATEGORICAL_FEATURES,
    SCORED_NUMERIC_FEATURES,
)

# NB: every ratio's denominator is an income, which may legitimately be 0 (the schema allows it);
# the floor keeps ratios finite while still making "debt with no income" the riskiest corner of
# the feature space.
INCOME_FLOOR = 1_000.0

ENGINEERED_FEATURES = tuple(ratio.name for ratio in RATIOS)
# The applicant fields the ratios read, in schema order.
RATIO_INPUTS = tuple(name for name in NUMERIC_FEATURES if any(name in r.inputs for r in RATIOS))


def ratio_columns(column: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The engineered ratios, in ``RATIOS`` order, from float64 arrays of the ``RATIO_INPUTS`` fields.

    NB: the one implementation of the ratios: the pipeline's first step and the pyfunc's fast
    path both call it, so their inputs to the trees are bit-identical. Each is the sum of its
    numerator fields over the floored sum of its denominator fields, so it rises with the first
    and falls with the second, for every applicant, exactly as the directions it inherits assume
    (IEEE sums and quotients are monotone in each operand).
    """
    return tuple(
        _total(column, ratio.numerator) / np.maximum(_total(column, ratio.denominator), INCOME_FLOOR)
        for ratio in RATIOS
    )


def _total(column: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    total = column[names[0]]
    for name in names[1:]:
        total = total + column[name]
    return total


def add_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with the engineered ratios the risk model is built on."""
    ratios = ratio_columns({name: frame[name].to_numpy(dtype="float64") for name in RATIO_INPUTS})
    out = frame.copy()
    for name, values in zip(ENGINEERED_FEATURES, ratios, strict=True):
        out[name] = values
    return out


def build_preprocessor() -> ColumnTransformer:
    """The ColumnTransformer: scored numeric and engineered columns as they are, fixed-category one-hot."""
    categories = [list(FEATURES_BY_NAME[name].categories) for name in SCORED_CATEGORICAL_FEATURES]
    # NB: fields the model does not score (age) are dropped here, the ColumnTransformer's default.
    return ColumnTransformer(
        [
            ("numeric", "passthrough", [*SCORED_NUMERIC_FEATURES, *ENGINEERED_FEATURES]),
            (
                "categorical",
                # NB: fixed categories so the encoded width never depends on the training sample;
                # unknown categories are refused earlier, by the pyfunc's input checks.
                OneHotEncoder(categories=categories, handle_unknown="error", dtype=np.float64),
                list(SCORED_CATEGORICAL_FEATURES),
            ),
        ],
        verbose_feature_names_out=False,
    )


def ratio_transformer() -> FunctionTransformer:
    """The first pipeline step: adds the engineered ratios, keeps pandas column names."""
    return FunctionTransformer(add_ratios, validate=False, feature_names_out=_ratio_names)


def _ratio_names(_: object, input_features: Sequence[str] | None) -> list[str]:
    names = list(input_features) if input_features is not None else []
    return [*names, *ENGINEERED_FEATURES]


INDEX_COLUMN = "monotone_index"


def index_values(columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The monotone index of each row: the weighted sum of ``columns``, summed in column order.

    NB: the one implementation: the pipeline's index step and the pyfunc's fast path both call it,
    so the forest's inputs are bit-identical (no BLAS product, whose blocking depends on the rows).
    A weight's sign is its column's direction, so the sum moves with risk along every direction.
    """
    total = np.zeros(columns.shape[0])
    for j in range(columns.shape[1]):
        total = total + weights[j] * columns[:, j]
    return total


class MonotoneIndex(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Appends ``monotone_index``: a linear score of the constrained columns, risk-signed by construction.

    ``signs`` holds each input column's direction (+1 risk up, -1 down, 0 unconstrained). The
    weights are fitted by non-negative least squares on the sign-folded, standardised columns, so
    each weight carries its column's sign (or is zero): the index can only rise along an "up"
    column and fall along a "down" one, and the forest is constrained to rise with it.

    NB: why it exists: scikit-learn bounds a monotone tree's whole subtree by the midpoint of each
    constrained split, so a forest alone cannot add up protective fields inside a risky branch (a
    long credit history under a high debt-to-income); measured on this generator, it overstated
    the risk of applicants aged 61+ by about 6 points of probability, through their long histories.
    The index gives every tree the additive part of the risk in one column.
    """

    def __init__(self, signs: Sequence[int] = ()) -> None:
        self.signs = signs

    def fit(self, x: np.ndarray, y: np.ndarray) -> MonotoneIndex:
        signs = np.asarray(self.signs, dtype=np.float64)
        constrained = np.flatnonzero(signs)
        folded = x[:, constrained] * signs[constrained]
        scale = folded.std(axis=0)
        scale[scale == 0] = 1.0
        weights = LinearRegression(positive=True).fit(folded / scale, y).coef_ / scale * signs[constrained]
        # NB: only the columns it weighs: a column with weight zero is not part of the index.
        self.columns_ = constrained[weights != 0]
        self.weights_ = weights[weights != 0]
        # NB: what each term adds on a typical applicant, to pass the index's share of a decision
        # back to the columns it is made of (model_code.fast).
        self.means_ = x[:, self.columns_].mean(axis=0)
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([x, index_values(x[:, self.columns_], self.weights_)])

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        names = list(input_features) if input_features is not None else []
        return np.asarray([*names, INDEX_COLUMN], dtype=object)
