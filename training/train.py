"""Stage 2 of training: the scikit-learn Pipeline (ratios → ColumnTransformer → RandomForest)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from model_code.preprocessing import build_preprocessor, ratio_transformer
from model_code.schema import FEATURE_NAMES
from training.data import TARGET


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


def build_pipeline(n_estimators: int, max_depth: int, min_samples_leaf: int, seed: int) -> Pipeline:
    """The full model: engineered ratios, fixed-category one-hot, then the forest."""
    forest = RandomForestClassifier(
        n_estimators=n_estimators,
        max_depth=max_depth,
        min_samples_leaf=min_samples_leaf,
        class_weight=None,
        random_state=seed,
        n_jobs=-1,
    )
    return Pipeline(
        [("ratios", ratio_transformer()), ("preprocess", build_preprocessor()), ("model", forest)]
    )


def fit(pipeline: Pipeline, train: pd.DataFrame) -> Pipeline:
    """Fit on all cores, then switch the forest to one job: parallel one-row predictions are slower."""
    pipeline.fit(Splits.features(train), train[TARGET])
    pipeline.named_steps["model"].set_params(n_jobs=1)
    return pipeline
