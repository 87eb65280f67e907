"""Feature preparation shared by training and the pyfunc: engineered ratios, then one-hot encoding.

Everything here is derived from ``model_code.schema`` so that the pipeline cannot drift from the
applicant fields the API accepts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from model_code.schema import CATEGORICAL_FEATURES, FEATURES_BY_NAME, NUMERIC_FEATURES

# NB: incomes may legitimately be 0 (the schema allows it); the floor keeps ratios finite while
# still making "debt with no income" the riskiest corner of the feature space.
INCOME_FLOOR = 1_000.0

RATIO_INPUTS = ("age", "income", "loan_amount", "credit_history_length", "total_debt")
ENGINEERED_FEATURES = (
    "debt_to_income",
    "loan_to_income",
    "total_debt_with_loan_to_income",
    "history_to_adult_years",
)


def ratio_columns(
    age: np.ndarray, income: np.ndarray, loan_amount: np.ndarray, history: np.ndarray, debt: np.ndarray
) -> tuple[np.ndarray, ...]:
    """The engineered ratios, in ``ENGINEERED_FEATURES`` order, from float64 arrays.

    NB: the one implementation of the ratios: the pipeline's first step and the pyfunc's fast
    path both call it, so their inputs to the trees are bit-identical.
    """
    floored_income = np.maximum(income, INCOME_FLOOR)
    adult_years = np.maximum(age - 17.0, 1.0)
    return (
        debt / floored_income,
        loan_amount / floored_income,
        (debt + loan_amount) / floored_income,
        history / adult_years,
    )


def add_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with the engineered ratios the risk model is built on."""
    ratios = ratio_columns(
        *(frame[name].to_numpy(dtype="float64") for name in RATIO_INPUTS),
    )
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
