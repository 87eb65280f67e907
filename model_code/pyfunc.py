"""The custom MLflow pyfunc: validates applicants, scores them with the fitted pipeline, decides.

Loaded by ``mlflow models serve`` (and ``mlflow.pyfunc.load_model``) from the models-from-code
file ``model_code/credit_model.py``; the fitted scikit-learn pipeline is a skops artifact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc.model import PythonModel, PythonModelContext
from mlflow.types import ColSpec, DataType, Schema
from mlflow.types.schema import Array, Object, Property
from sklearn.pipeline import Pipeline

from model_code.fast import FastPipeline
from model_code.reasons import MAX_REASONS, REASONS, credit_score
from model_code.schema import APPROVED, REJECTED
from model_code.validation import InvalidApplicants, validate

DEFAULT_THRESHOLD = 0.5
# NB: "sklearn" scores through the scikit-learn pipeline instead of the fast exact path: the
# benchmark's baseline, and a switch operators can flip without retraining.
INFERENCE_ENV = "CREDIT_SCORE_INFERENCE"
INFERENCE_MODES = ("fast", "sklearn")
PIPELINE_ARTIFACT = "pipeline"

# NB: skops refuses to load any type it was not told to trust; this is the complete list of
# non-scikit-learn types our pipeline contains, so a tampered artifact cannot run other code.
TRUSTED_TYPES = ("model_code.preprocessing.add_ratios", "model_code.preprocessing._ratio_names")


def signature() -> ModelSignature:
    """The MLflow signature: the output columns; the applicants are checked by ``predict`` itself.

    NB: no input schema, on purpose. MLflow 3.17 has no column type that takes what data scientists
    hold: ``double`` refuses int64 ("Can not safely convert int64 to float64", quoting the whole
    DataFrame), ``long`` refuses float64 and lets the scoring server's JSON parser truncate 35.5 to
    35, ``string`` refuses categorical columns, and ``any`` makes the scoring server's CSV parser
    fail. Without an input schema MLflow passes every frame through as it is (int32/int64/float64,
    object, string or categorical; JSON and CSV parsed by pandas, values intact), and ``validate``
    enforces ``model_code.schema``'s types and bounds, naming the field and the rule, never a value.
    The schema is still recorded in the model: the ``features`` metadata of its MLmodel.
    """
    outputs = Schema(
        [
            ColSpec(DataType.string, "prediction"),
            ColSpec(DataType.double, "approval_probability"),
            ColSpec(DataType.double, "rejection_probability"),
            ColSpec(DataType.double, "risk_score"),
            ColSpec(DataType.double, "confidence"),
            ColSpec(DataType.long, "credit_score"),
            ColSpec(
                Array(
                    Object(
                        [
                            Property("code", DataType.string),
                            Property("description", DataType.string),
                            Property("contribution", DataType.double),
                        ]
                    )
                ),
                "reasons",
            ),
            ColSpec(DataType.string, "model_run_id"),
        ]
    )
    return ModelSignature(inputs=None, outputs=outputs)


def model_input(applicants: pd.DataFrame | list[dict[str, Any]]) -> pd.DataFrame:
    """Applicants (a DataFrame or records) as the DataFrame the pyfunc takes; any dtypes will do."""
    return pd.DataFrame(applicants)


def load_pipeline(path: str | Path) -> Pipeline:
    """Load a skops-saved pipeline, trusting only scikit-learn, numpy and our own functions."""
    untrusted = skops.io.get_untrusted_types(file=path)
    unexpected = [t for t in untrusted if not _is_trusted(t)]
    if unexpected:
        raise ValueError(f"refusing to load {path}: untrusted types {unexpected}")
    pipeline = skops.io.load(path, trusted=untrusted)
    if not isinstance(pipeline, Pipeline):
        raise TypeError(f"{path} holds a {type(pipeline).__name__}, not a Pipeline")
    return pipeline


def _is_trusted(type_name: str) -> bool:
    return type_name in TRUSTED_TYPES or type_name.split(".")[0] in {"sklearn", "numpy", "builtins"}


def score(pipeline: Pipeline, applicants: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Score applicants with the scikit-learn pipeline (the reference path; class 1 is default)."""
    return pd.DataFrame(decide(pipeline.predict_proba(applicants)[:, 1].astype("float64"), threshold))


def decide(rejection: np.ndarray, threshold: float) -> dict[str, Any]:
    """Probabilities of default → the decision, probabilities, confidence and score points columns."""
    approval = 1.0 - rejection
    rejected = rejection >= threshold
    return {
        "prediction": np.where(rejected, REJECTED, APPROVED),
        "approval_probability": approval,
        "rejection_probability": rejection,
        "risk_score": rejection,
        "confidence": np.where(rejected, rejection, approval),
        "credit_score": np.array([credit_score(p) for p in rejection.tolist()], dtype=np.int64),
    }


def principal_reasons(contributions: np.ndarray) -> list[list[dict[str, object]]]:
    """Per row, up to four reasons that raised the risk most, largest first (ties in catalogue order)."""
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :MAX_REASONS]
    rows = []
    for row, ranked in zip(contributions, order, strict=True):
        rows.append(
            [
                {
                    "code": REASONS[i].code,
                    "description": REASONS[i].description,
                    "contribution": float(row[i]),
                }
                for i in ranked
                if row[i] > 0.0
            ]
        )
    return rows


class InvalidApplicantData(MlflowException):
    """INVALID_PARAMETER_VALUE whose message names fields and rules and can never grow the data.

    NB: MLflow's scoring server rewrites the message of any MlflowException raised by predict to
    ``Failed to predict data '<the whole DataFrame>'`` + the message, which would echo every
    applicant's values into the 400 body. This class keeps its own message on that assignment.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._safe_message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_safe_message"):
            self._safe_message = value


class CreditScoreModel(PythonModel):
    """Scores applicants: probabilities, risk score, decision and confidence per row."""

    def load_context(self, context: PythonModelContext) -> None:
        config: dict[str, Any] = dict(context.model_config or {})
        self.threshold = float(config.get("decision_threshold", DEFAULT_THRESHOLD))
        self.run_id = str(config.get("run_id", ""))
        self.pipeline = load_pipeline(context.artifacts[PIPELINE_ARTIFACT])
        self.inference = os.environ.get(INFERENCE_ENV) or str(config.get("inference", "fast"))
        if self.inference not in INFERENCE_MODES:
            raise ValueError(f"{INFERENCE_ENV} must be one of {', '.join(INFERENCE_MODES)}")
        self.fast = FastPipeline(self.pipeline)

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        try:
            applicants = validate(model_input)
        except InvalidApplicants as exc:
            raise InvalidApplicantData(f"Invalid applicant data: {exc}") from None
        explanation = self.fast.explain(applicants)
        if self.inference == "sklearn":
            risk = self.pipeline.predict_proba(applicants.to_frame())[:, 1].astype("float64")
        else:
            risk = explanation.risk
        columns = decide(risk, self.threshold)
        columns["reasons"] = principal_reasons(explanation.contributions)
        columns["model_run_id"] = [self.run_id] * len(risk)
        # NB: one DataFrame built once from columns already in OUTPUT_COLUMNS order: assigning
        # column by column, or passing `columns=`, costs more than the trees for one applicant.
        return pd.DataFrame(columns)
