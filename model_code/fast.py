"""The pyfunc's fast exact inference path: numpy one-hot encoding and a flat, vectorised forest.

scikit-learn stays the training library; at load time the fitted pipeline is flattened into a
few arrays and rows are scored without pandas, the ColumnTransformer or joblib. Results equal
``pipeline.predict_proba`` to the last bit (same ratio and index code as the pipeline, same float32
input rounding as scikit-learn's trees, same tree order of summation); a test holds it to 1e-9 on
100,000 rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from model_code.preprocessing import (
    ENGINEERED_FEATURES,
    RATIO_INPUTS,
    MonotoneIndex,
    index_values,
    ratio_columns,
)
from model_code.reasons import REASONS, reason_for_column
from model_code.schema import (
    CATEGORICAL_FEATURES,
    FEATURES_BY_NAME,
    NUMERIC_FEATURES,
    SCORED_CATEGORICAL_FEATURES,
    SCORED_NUMERIC_FEATURES,
)
from model_code.validation import Applicants

_RATIO_COLUMNS = {name: NUMERIC_FEATURES.index(name) for name in RATIO_INPUTS}
# Where the scored fields sit among the validated ones (unscored fields, such as age, are skipped).
_SCORED_NUMERIC = np.array([NUMERIC_FEATURES.index(name) for name in SCORED_NUMERIC_FEATURES], dtype=np.int64)
_SCORED_CATEGORICAL = [CATEGORICAL_FEATURES.index(name) for name in SCORED_CATEGORICAL_FEATURES]


def encoded_feature_names() -> list[str]:
    """The column layout the fast encoder produces (and the ColumnTransformer must match)."""
    one_hot = [
        f"{name}_{category}"
        for name in SCORED_CATEGORICAL_FEATURES
        for category in FEATURES_BY_NAME[name].categories
    ]
    return [*SCORED_NUMERIC_FEATURES, *ENGINEERED_FEATURES, *one_hot]


def encode(applicants: Applicants) -> np.ndarray:
    """Validated applicants → the float64 matrix the forest was trained on, without pandas."""
    numeric = applicants.numeric
    ratios = ratio_columns({name: numeric[:, i] for name, i in _RATIO_COLUMNS.items()})
    blocks = [numeric[:, _SCORED_NUMERIC], np.column_stack(ratios)]
    for j, name in zip(_SCORED_CATEGORICAL, SCORED_CATEGORICAL_FEATURES, strict=True):
        width = len(FEATURES_BY_NAME[name].categories)
        blocks.append(np.eye(width)[applicants.codes[:, j]])
    return np.hstack(blocks)


class FlatForest:
    """Every tree of a fitted RandomForestClassifier in shared flat arrays, walked level by level."""

    def __init__(self, forest: RandomForestClassifier) -> None:
        trees = [estimator.tree_ for estimator in forest.estimators_]
        offsets = np.cumsum([0] + [tree.node_count for tree in trees[:-1]])
        positive = list(forest.classes_).index(1)
        feature, threshold, left, right, value = [], [], [], [], []
        for offset, tree in zip(offsets, trees, strict=True):
            nodes = np.arange(tree.node_count)
            leaf = tree.children_left < 0
            # NB: leaves point to themselves with an infinite threshold, so every row can take the
            # same number of steps (the deepest tree's depth) without per-tree bookkeeping.
            left.append(np.where(leaf, nodes, tree.children_left) + offset)
            right.append(np.where(leaf, nodes, tree.children_right) + offset)
            feature.append(np.where(leaf, 0, tree.feature))
            threshold.append(np.where(leaf, np.inf, tree.threshold))
            value.append(tree.value[:, 0, positive])
        self.roots = offsets.astype(np.int64)
        self.feature = np.concatenate(feature).astype(np.int64)
        self.threshold = np.concatenate(threshold)
        self.value = np.concatenate(value)
        self.depth = max(tree.max_depth for tree in trees)
        self.n_features = int(forest.n_features_in_)
        # Edges of every node (2·node: left, 2·node + 1: right): the child, and the value step.
        self.edge_child = (
            np.column_stack([np.concatenate(left), np.concatenate(right)]).ravel().astype(np.int64)
        )
        self.edge_delta = self.value[self.edge_child] - np.repeat(self.value, 2)

    def contributions(self, features: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """Per-tree path contributions: (P(class 1) per row, base value, rows × encoded columns).

        Each split on a row's path moves the tree's value from the parent node to the child; that
        move is credited to the split's column. Summed over the trees, base + contributions equals
        the forest's probability exactly (up to float rounding), with no sampling or approximation.
        """
        n_rows, n_trees = features.shape[0], self.roots.size
        credit = np.zeros(n_rows * self.n_features)
        node = self._walk(features, credit)
        risk: np.ndarray = np.cumsum(self.value[node], axis=1)[:, -1] / n_trees
        base = float(np.sum(self.value[self.roots]) / n_trees)
        return risk, base, credit.reshape(n_rows, self.n_features) / n_trees

    def _walk(self, features: np.ndarray, credit: np.ndarray) -> np.ndarray:
        """The leaf reached in every tree (rows × trees), all trees walked together a level a step.

        Each step's value change is added to ``credit`` (rows · columns, flat) at the column that
        was split on: the path contributions, from the same walk that finds the leaves.
        """
        # NB: scikit-learn's trees compare float32 inputs with float64 thresholds; round first.
        flat_x = np.ascontiguousarray(features, dtype=np.float32).astype(np.float64).ravel()
        n_rows, n_trees = features.shape[0], self.roots.size
        # NB: the (row, tree) pairs flat, row-major, so that no step reshapes; one applicant (the
        # common call) needs no row offsets at all. A step costs about a dozen numpy calls, and for a
        # few rows their overhead is the walk's cost.
        node = np.tile(self.roots, n_rows)
        rows = None if n_rows == 1 else np.repeat(np.arange(n_rows) * self.n_features, n_trees)
        feature, threshold = self.feature, self.threshold
        edge_child, edge_delta = self.edge_child, self.edge_delta
        for _ in range(self.depth):
            column = feature[node] if rows is None else rows + feature[node]
            # NB: edge 2·node is "left", 2·node + 1 "right"; one gather each for child and value step.
            edge = 2 * node
            edge += flat_x[column] > threshold[node]
            # NB: leaves loop to themselves, so their steps add exactly zero.
            credit += np.bincount(column, weights=edge_delta[edge], minlength=credit.size)
            node = edge_child[edge]
        return node.reshape(n_rows, n_trees)


@dataclass(frozen=True)
class Explanation:
    """Risk per row, the base value, and each reason code's share of (risk − base), rows × REASONS."""

    risk: np.ndarray
    base: float
    contributions: np.ndarray


class FastPipeline:
    """The fitted pipeline's fast twin: ``explain(...).risk`` == ``pipeline.predict_proba(...)[:, 1]``."""

    def __init__(self, pipeline: Pipeline) -> None:
        names = list(pipeline.named_steps["preprocess"].get_feature_names_out())
        if names != encoded_feature_names():
            raise ValueError("the pipeline's encoded columns differ from the fast encoder's layout")
        # NB: the twin trained only to measure the policy's cost has no index step.
        self.index: MonotoneIndex | None = pipeline.named_steps.get("index")
        model = pipeline.named_steps["model"]
        self.sigmoid: tuple[float, float] | None = None
        if isinstance(model, CalibratedClassifierCV):
            (calibrated,) = model.calibrated_classifiers_
            (calibrator,) = calibrated.calibrators
            if not hasattr(calibrator, "a_"):
                raise ValueError("the fast path supports sigmoid calibration only")
            self.sigmoid = (float(calibrator.a_), float(calibrator.b_))
            model = calibrated.estimator.estimator  # FrozenEstimator → the fitted forest
        self.forest = FlatForest(model)
        columns_of = {
            r.code: [i for i, name in enumerate(names) if reason_for_column(name) == r.code] for r in REASONS
        }
        self.reason_columns = [np.array(columns_of[r.code], dtype=np.int64) for r in REASONS]

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        if self.sigmoid is None:
            return raw
        a, b = self.sigmoid
        # NB: scikit-learn's _SigmoidCalibration.predict, operation for operation.
        calibrated: np.ndarray = expit(-(a * raw + b))
        return calibrated

    def features(self, applicants: Applicants) -> np.ndarray:
        """The forest's input: the encoded columns, then the monotone index when the pipeline has one."""
        encoded = encode(applicants)
        if self.index is None:
            return encoded
        return np.column_stack([encoded, index_values(encoded[:, self.index.columns_], self.index.weights_)])

    def _credit_back(self, features: np.ndarray, credit: np.ndarray) -> np.ndarray:
        """Per-column contributions with the index's share passed back to the columns it is made of.

        The index's share of a row's risk goes to the terms that pushed the index that way against a
        typical applicant (above the training mean for a share that raised the risk, below it for
        one that lowered it), in proportion to how far each pushed; a row where no term pushed that
        way splits it by the terms' size, and one where every term is typical splits it evenly. The
        shares sum to one, so base + contributions still equals the risk.
        """
        if self.index is None:
            return credit
        through_index, columns = credit[:, -1:], self.index.columns_
        out = credit[:, :-1].copy()
        if columns.size == 0:
            return out
        terms = (features[:, columns] - self.index.means_) * self.index.weights_
        share = np.where(through_index >= 0.0, terms, -terms).clip(min=0.0)
        stuck = share.sum(axis=1) <= 0.0
        share[stuck] = np.abs(terms[stuck])
        share[stuck & (share.sum(axis=1) <= 0.0)] = 1.0
        out[:, columns] += through_index * (share / share.sum(axis=1, keepdims=True))
        return out

    def explain(self, applicants: Applicants, chunk_rows: int = 2048) -> Explanation:
        """Risk with reason-code contributions; with calibration, the forest's contributions are
        rescaled so that calibrated base + contributions still equals the calibrated risk."""
        features = self.features(applicants)
        if 0 < len(features) <= chunk_rows:
            raw, raw_base, by_column = self.forest.contributions(features)
        else:
            parts = [
                self.forest.contributions(features[i : i + chunk_rows])
                for i in range(0, len(features), chunk_rows)
            ]
            raw = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
            raw_base = parts[0][1] if parts else 0.0
            by_column = np.vstack([p[2] for p in parts]) if parts else np.zeros((0, self.forest.n_features))
        by_column = self._credit_back(features, by_column)
        risk = self._calibrate(raw)
        base = float(self._calibrate(np.array([raw_base]))[0])
        moved = raw - raw_base
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(np.abs(moved) > 1e-15, (risk - base) / moved, 0.0)
        # NB: summed row by row (no BLAS matmul, whose blocking depends on the number of rows). numpy
        # adds fewer than 8 values a row in the same order for one row as for many, so while every
        # reason has fewer than 8 encoded columns (a test holds it) an applicant's reasons do not
        # depend on who shares its batch; from 8 on, its pairwise sum would order them differently.
        by_reason = np.empty((len(by_column), len(self.reason_columns)))
        for j, cols in enumerate(self.reason_columns):
            np.sum(by_column[:, cols], axis=1, out=by_reason[:, j])
        by_reason *= scale[:, None]
        return Explanation(risk, base, by_reason)
