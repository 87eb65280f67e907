"""MLflow's loaded pyfunc takes the DataFrames data scientists have, whatever their dtypes.

The model is saved and loaded by MLflow itself (``mlflow.pyfunc.save_model``/``load_model``, the
signature training logs), so MLflow's own schema enforcement runs exactly as in a notebook.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
import skops.io
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from model_code.pyfunc import PIPELINE_ARTIFACT, signature
from model_code.schema import CATEGORICAL_FEATURES, EXAMPLE_APPLICANTS, FEATURES, NUMERIC_FEATURES
from training.data import TARGET, generate_applicants

MODEL_CODE = Path(__file__).resolve().parents[2] / "model_code"
INTEGERS = [f.name for f in FEATURES if f.kind == "integer"]


@pytest.fixture(scope="module")
def pyfunc(small_pipeline, tmp_path_factory: pytest.TempPathFactory) -> PyFuncModel:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("pyfunc")
    skops.io.dump(small_pipeline, root / "pipeline.skops")
    mlflow.pyfunc.save_model(
        root / "model",
        python_model=str(MODEL_CODE / "credit_model.py"),
        artifacts={PIPELINE_ARTIFACT: str(root / "pipeline.skops")},
        code_paths=[str(MODEL_CODE)],
        signature=signature(),
        input_example=pd.DataFrame(list(EXAMPLE_APPLICANTS.values())),
        model_config={"decision_threshold": 0.5, "run_id": "0" * 32},
    )
    loaded: PyFuncModel = mlflow.pyfunc.load_model(str(root / "model"))
    return loaded


def _score(pyfunc: PyFuncModel, frame: pd.DataFrame) -> pd.DataFrame:
    scored = pyfunc.predict(frame)
    assert isinstance(scored, pd.DataFrame)
    return scored


def _csv_round_trip(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


AS_DATA_SCIENTISTS_HAVE_THEM: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "int64 integers": lambda f: f.astype(dict.fromkeys(INTEGERS, "int64")),
    "int32 integers": lambda f: f.astype(dict.fromkeys(INTEGERS, "int32")),
    "every number int64": lambda f: f.astype(dict.fromkeys(NUMERIC_FEATURES, "int64")),
    "object columns": lambda f: f.astype(object),
    "categorical categories": lambda f: f.astype(dict.fromkeys(CATEGORICAL_FEATURES, "category")),
    "string categories": lambda f: f.astype(dict.fromkeys(CATEGORICAL_FEATURES, "string")),
    "read back from CSV": _csv_round_trip,
}


@pytest.mark.parametrize("n_rows", [3, 500], ids=["few-rows", "many-rows"])
@pytest.mark.parametrize("convert", AS_DATA_SCIENTISTS_HAVE_THEM.values(), ids=AS_DATA_SCIENTISTS_HAVE_THEM)
def test_every_dtype_scores_exactly_as_float64(
    pyfunc: PyFuncModel, convert: Callable[[pd.DataFrame], pd.DataFrame], n_rows: int
) -> None:
    applicants = generate_applicants(n_rows, seed=11).drop(columns=[TARGET])
    # NB: whole numbers everywhere, so that "every number int64" holds the same values.
    applicants[list(NUMERIC_FEATURES)] = applicants[list(NUMERIC_FEATURES)].round()
    as_float64 = applicants.astype(dict.fromkeys(NUMERIC_FEATURES, "float64"))

    scored = _score(pyfunc, convert(applicants))

    pd.testing.assert_frame_equal(scored, _score(pyfunc, as_float64), check_exact=True)
    assert len(scored) == n_rows


def test_extra_columns_such_as_an_application_id_are_ignored(pyfunc: PyFuncModel) -> None:
    applicants = generate_applicants(20, seed=12).drop(columns=[TARGET])

    with_id = _score(pyfunc, applicants.assign(application_id=[f"A-{i}" for i in range(20)]))

    pd.testing.assert_frame_equal(with_id, _score(pyfunc, applicants), check_exact=True)


@pytest.mark.parametrize("n_rows", [3, 500], ids=["few-rows", "many-rows"])
def test_an_int64_frame_with_bad_values_names_fields_never_values(pyfunc: PyFuncModel, n_rows: int) -> None:
    applicants = generate_applicants(n_rows, seed=13).drop(columns=[TARGET, "total_debt"])
    applicants.loc[1, "age"] = 17
    applicants["income"] = 81234.0

    with pytest.raises(MlflowException) as caught:
        pyfunc.predict(applicants)

    message = caught.value.message
    assert message.endswith("age must be an integer between 18 and 100 (row 1); total_debt is required")
    assert "81234" not in message
    assert "Failed to enforce schema" not in message


def test_a_fractional_integer_is_refused_not_truncated(pyfunc: PyFuncModel) -> None:
    applicants = generate_applicants(3, seed=14).drop(columns=[TARGET])
    applicants["age"] = applicants["age"].astype("float64")
    applicants.loc[2, "age"] = 35.5

    with pytest.raises(MlflowException, match=r"age must be an integer between 18 and 100 \(row 2\)$"):
        pyfunc.predict(applicants)
