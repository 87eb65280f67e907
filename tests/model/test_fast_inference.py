"""The pyfunc's fast path must give scikit-learn's answers: same probabilities, same decisions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from model_code.fast import FastPipeline, encode, encoded_feature_names
from model_code.validation import validate
from training.data import TARGET, generate_applicants


@pytest.fixture(scope="module")
def fast(small_pipeline: Pipeline) -> FastPipeline:
    return FastPipeline(small_pipeline)


def test_probabilities_equal_scikit_learn_on_100000_rows(
    small_pipeline: Pipeline, fast: FastPipeline
) -> None:
    applicants = validate(generate_applicants(100_000, seed=31).drop(columns=[TARGET]))

    expected = small_pipeline.predict_proba(applicants.to_frame())[:, 1]
    got = fast.explain(applicants).risk

    assert np.max(np.abs(got - expected)) <= 1e-9
    assert ((got >= 0.5) == (expected >= 0.5)).all()


# NB: explain walks the forest in chunks of 2048 rows: one row, a few, and either side of a chunk.
@pytest.mark.parametrize("n_rows", [1, 2, 2048, 2049])
def test_the_tree_walk_agrees_with_scikit_learn_at_any_batch_size(
    small_pipeline: Pipeline, fast: FastPipeline, n_rows: int
) -> None:
    applicants = validate(
        generate_applicants(max(n_rows, 100), seed=n_rows).drop(columns=[TARGET]).head(n_rows)
    )

    expected = small_pipeline.predict_proba(applicants.to_frame())[:, 1]

    np.testing.assert_array_equal(fast.explain(applicants).risk, expected)


def test_inputs_on_and_next_to_split_thresholds_round_like_scikit_learn(
    small_pipeline: Pipeline, fast: FastPipeline
) -> None:
    """Values that float32 cannot represent, placed at the forest's own thresholds."""
    base = fast.features(validate(generate_applicants(400, seed=5).drop(columns=[TARGET])))
    tree = small_pipeline.named_steps["model"].estimators_[0].tree_
    splits = [(f, t) for f, t in zip(tree.feature, tree.threshold, strict=True) if f >= 0][:200]
    rows = base[: len(splits)].copy()
    for row, (feature, threshold) in zip(rows, splits, strict=True):
        row[feature] = np.nextafter(threshold, np.inf)  # just above in float64, equal in float32

    expected = small_pipeline.named_steps["model"].predict_proba(rows)[:, 1]

    risk, _, _ = fast.forest.contributions(rows)
    np.testing.assert_array_equal(risk, expected)


def test_fast_encoder_layout_is_the_column_transformers(small_pipeline: Pipeline) -> None:
    fitted = small_pipeline.named_steps["preprocess"]
    applicants = validate(generate_applicants(300, seed=8).drop(columns=[TARGET]))
    frame = small_pipeline.named_steps["ratios"].transform(applicants.to_frame())

    assert list(fitted.get_feature_names_out()) == encoded_feature_names()
    np.testing.assert_array_equal(encode(applicants), fitted.transform(frame))


def test_the_forest_input_with_its_monotone_index_is_the_pipelines(
    small_pipeline: Pipeline, fast: FastPipeline
) -> None:
    applicants = validate(generate_applicants(300, seed=9).drop(columns=[TARGET]))

    expected = small_pipeline[:-1].transform(applicants.to_frame())

    assert list(small_pipeline[:-1].get_feature_names_out())[-1] == "monotone_index"
    np.testing.assert_array_equal(fast.features(applicants), expected)


def test_an_applicants_reasons_are_the_same_alone_and_in_a_batch(fast: FastPipeline) -> None:
    frame = generate_applicants(300, seed=41).drop(columns=[TARGET])
    batch = fast.explain(validate(frame)).contributions

    # NB: numpy sums fewer than 8 values a row in one order whatever the number of rows (explain's
    # by-reason sums); a reason with 8 encoded columns or more would need another summation.
    assert max(len(columns) for columns in fast.reason_columns) < 8
    for i in range(0, 300, 23):
        alone = fast.explain(validate(frame.iloc[i : i + 1])).contributions
        np.testing.assert_array_equal(alone[0], batch[i])
