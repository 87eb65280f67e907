"""Stage 2 of training: the scikit-learn Pipeline (ratios → ColumnTransformer → monotone index →
RandomForest).

The forest is constrained to the credit policy of ``model_code.schema``: along every encoded column
of a field or ratio with a direction, and along the monotone index made of those columns, its
probability of default can only move that way.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from model_code.fast import encoded_feature_names
from model_code.preprocessing import MonotoneIndex, build_preprocessor, ratio_transformer
from model_code.schema import FEATURE_NAMES, FEATURES, RATIOS, Direction
from training.data import TARGET

# NB: scikit-learn's monotonic_cst for a binary classifier constrains the probability of the
# positive class, classes_[1]: here 1, "defaulted". So +1 is "risk up".
_SIGN: dict[Direction, int] = {"up": 1, "down": -1, "none": 0}


@dataclass(frozen=True)
class Splits:
    """Stratified train / validation / test partitions of the applicants."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    @staticmethod
    def features(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[:, list(FEATURE_NAMES)]


def split(frame: pd.DataFrame, seed: int, test_size: float = 0.2, validation_size: float = 0.1) -> Splits:
    """Stratify on the label so every partition keeps the book's default rate."""
    rest, test = train_test_split(frame, test_size=test_size, stratify=frame[TARGET], random_state=seed)
    train, validation = train_test_split(
        rest,
        test_size=validation_size / (1.0 - test_size),
        stratify=rest[TARGET],
        random_state=seed,
    )
    return Splits(
        train.reset_index(drop=True), validation.reset_index(drop=True), test.reset_index(drop=True)
    )


def monotonic_constraints() -> list[int]:
    """The forest's ``monotonic_cst``: each encoded column's direction, from its field or ratio.

    One-hot columns are unconstrained (categories have no order). Every column a constrained field
    reaches (its own, and the ratios it enters, whose directions agree by construction in
    ``model_code.schema.Ratio``) is constrained its way, so the direction holds end to end, for
    the applicant's field and not only for each column.
    """
    direction: dict[str, Direction] = {f.name: f.direction for f in FEATURES if f.is_numeric}
    direction |= {r.name: r.direction for r in RATIOS}
    direction |= {f"{f.name}_{category}": "none" for f in FEATURES for category in f.categories}
    return [_SIGN[direction[column]] for column in encoded_feature_names()]


def build_pipeline(
    n_estimators: int, max_depth: int, min_samples_leaf: int, seed: int, *, constrained: bool = True
) -> Pipeline:
    """The full model: engineered ratios, fixed-category one-hot, then the forest.

    ``constrained=False`` drops the credit policy (constraints and index): only to measure what it
    costs (training's unconstrained twin), never to ship.
    """
    signs = monotonic_constraints()
    forest = RandomForestClassifier(
        n_estimators=n_estimators,
        max_depth=max_depth,
        min_samples_leaf=min_samples_leaf,
        class_weight=None,
        random_state=seed,
        n_jobs=-1,
        # NB: the index rises with risk along every direction, so the forest must rise with it.
        monotonic_cst=[*signs, 1] if constrained else None,
    )
    index = [("index", MonotoneIndex(signs))] if constrained else []
    return Pipeline(
        [("ratios", ratio_transformer()), ("preprocess", build_preprocessor()), *index, ("model", forest)]
    )


def fit(pipeline: Pipeline, train: pd.DataFrame) -> Pipeline:
    """Fit on all cores, then switch the forest to one job: parallel one-row predictions are slower."""
    pipeline.fit(Splits.features(train), train[TARGET])
    pipeline.named_steps["model"].set_params(n_jobs=1)
    return pipeline
