"""Feature preparation shared by training and the pyfunc: engineered ratios, then one-hot encoding.

Everything here is derived from ``model_code.schema`` so that the pipeline cannot drift from the
applicant fields the API accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from model_code.schema import CATEGORICAL_FEATURES, FEATURES_BY_NAME, NUMERIC_FEATURES, RATIOS

# NB: incomes may legitimately be 0 (the schema allows it); the floor keeps ratios finite while
# still making "debt with no income" the riskiest corner of the feature space.
INCOME_FLOOR = 1_000.0

ENGINEERED_FEATURES = tuple(ratio.name for ratio in RATIOS)
# The applicant fields the ratios read, in schema order.
RATIO_INPUTS = tuple(name for name in NUMERIC_FEATURES if any(name in r.inputs for r in RATIOS))


def ratio_columns(column: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The engineered ratios, in ``RATIOS`` order, from float64 arrays of the ``RATIO_INPUTS`` fields.

    NB: the one implementation of the ratios: the pipeline's first step and the pyfunc's fast
    path both call it, so their inputs to the trees are bit-identical. A ratio declared in the
    schema without a formula here fails with its name (KeyError).
    """
    income = np.maximum(column["income"], INCOME_FLOOR)
    formulas: dict[str, Callable[[], np.ndarray]] = {
        "debt_to_income": lambda: column["total_debt"] / income,
        "loan_to_income": lambda: column["loan_amount"] / income,
        "total_debt_with_loan_to_income": lambda: (column["total_debt"] + column["loan_amount"]) / income,
        "history_to_adult_years": lambda: (
            column["credit_history_length"] / np.maximum(column["age"] - 17.0, 1.0)
        ),
    }
    return tuple(formulas[ratio.name]() for ratio in RATIOS)


def add_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with the engineered ratios the risk model is built on."""
    ratios = ratio_columns({name: frame[name].to_numpy(dtype="float64") for name in RATIO_INPUTS})
    out = frame.copy()
    for name, values in zip(ENGINEERED_FEATURES, ratios, strict=True):
        out[name] = values
    return out


def build_preprocessor() -> ColumnTransformer:
    """The ColumnTransformer: numeric and engineered columns as they are, fixed-category one-hot."""
    categories = [list(FEATURES_BY_NAME[name].categories) for name in CATEGORICAL_FEATURES]
    return ColumnTransformer(
        [
            ("numeric", "passthrough", [*NUMERIC_FEATURES, *ENGINEERED_FEATURES]),
            (
                "categorical",
                # NB: fixed categories so the encoded width never depends on the training sample;
                # unknown categories are refused earlier, by the pyfunc's input checks.
                OneHotEncoder(categories=categories, handle_unknown="error", dtype=np.float64),
                list(CATEGORICAL_FEATURES),
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
