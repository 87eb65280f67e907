"""The custom MLflow pyfunc: validates applicants, scores them with the fitted pipeline, decides.

Loaded by ``mlflow models serve`` (and ``mlflow.pyfunc.load_model``) from the models-from-code
file ``model_code/credit_model.py``; the fitted scikit-learn pipeline is a skops artifact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import ErrorCode
from mlflow.pyfunc.model import PythonModel, PythonModelContext
from mlflow.types import ColSpec, DataType, Schema
from mlflow.types.schema import Array, Object, Property
from sklearn.pipeline import Pipeline

from model_code.contract import (
    APPROVED,
    OUTPUTS,
    REASON_FIELDS,
    REFUSAL_ERROR_CODE,
    REJECTED,
    Output,
    Violation,
    refusal,
    row_of,
)
from model_code.fast import FastPipeline
from model_code.reasons import MAX_REASONS, REASONS, credit_score
from model_code.schema import FEATURES
from model_code.tracking import THRESHOLD_PARAM
from model_code.validation import InvalidApplicants, validate

# NB: "sklearn" scores through the scikit-learn pipeline instead of the fast exact path: the
# benchmark's baseline, and a switch operators can flip without retraining.
INFERENCE_ENV = "CREDIT_SCORE_INFERENCE"
INFERENCE_MODES = ("fast", "sklearn")
PIPELINE_ARTIFACT = "pipeline"

# NB: skops refuses to load any type it was not told to trust; this is the complete list of
# non-scikit-learn types our pipeline contains, so a tampered artifact cannot run other code.
TRUSTED_TYPES = (
    "model_code.preprocessing.add_ratios",
    "model_code.preprocessing._ratio_names",
    "model_code.preprocessing.MonotoneIndex",
)


def signature() -> ModelSignature:
    """The MLflow signature: outputs from the output contract; the applicants are checked by ``predict``.

    NB: no input schema, on purpose. MLflow 3.17 has no column type that takes what data scientists
    hold: ``double`` refuses int64 ("Can not safely convert int64 to float64", quoting the whole
    DataFrame), ``long`` refuses float64 and lets the scoring server's JSON parser truncate 35.5 to
    35, ``string`` refuses categorical columns, and ``any`` makes the scoring server's CSV parser
    fail. Without an input schema MLflow passes every frame through as it is (int32/int64/float64,
    object, string or categorical; JSON and CSV parsed by pandas, values intact), and ``validate``
    enforces ``model_code.schema``'s types and bounds, naming the field and the rule, never a value.
    The schema is still recorded in the model: the ``features`` metadata of its MLmodel.
    """
    outputs = Schema([ColSpec(_data_type(output), output.name) for output in OUTPUTS])
    return ModelSignature(inputs=None, outputs=outputs)


def model_metadata() -> dict[str, Any]:
    """The MLmodel's metadata: the applicant schema's fields, the input half the signature leaves out."""
    features = []
    for feature in FEATURES:
        data = asdict(feature)
        data["categories"] = list(data["categories"])
        features.append(data)
    return {"features": features}


_DATA_TYPES = {
    "category": DataType.string,
    "string": DataType.string,
    "number": DataType.double,
    "integer": DataType.long,
}


def _data_type(output: Output) -> DataType | Array:
    """The MLflow type of one output column of ``model_code.contract``."""
    if output.kind == "reasons":
        return Array(Object([Property(item.name, _DATA_TYPES[item.kind]) for item in REASON_FIELDS]))
    return _DATA_TYPES[output.kind]


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


def decide(rejection: np.ndarray, threshold: float) -> dict[str, Any]:
    """Probabilities of default → the decision, probabilities, confidence and score points columns."""
    approval = 1.0 - rejection
    rejected = rejection >= threshold
    return {
        "prediction": np.where(rejected, REJECTED, APPROVED),
        "confidence": np.where(rejected, rejection, approval),
        "risk_score": rejection,
        "approval_probability": approval,
        # NB: a copy: the answer's frame takes its arrays without copying them, and two columns
        # sharing one array would change together.
        "rejection_probability": rejection.copy(),
        "credit_score": np.array([credit_score(p) for p in rejection.tolist()], dtype=np.int64),
    }


_CODES = [reason.code for reason in REASONS]
_DESCRIPTIONS = [reason.description for reason in REASONS]


def principal_reasons(contributions: np.ndarray) -> list[list[dict[str, Any]]]:
    """Per row, up to four reasons that raised the risk most, largest first (ties in catalogue order)."""
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :MAX_REASONS]
    # NB: as Python lists: indexing numpy rows value by value cost a tenth of a 10,000-row call.
    return [
        [
            {"code": _CODES[i], "description": _DESCRIPTIONS[i], "contribution": row[i]}
            for i in ranked
            if row[i] > 0.0
        ]
        for row, ranked in zip(contributions.tolist(), order.tolist(), strict=True)
    ]


class InvalidApplicantData(MlflowException):
    """HTTP 400 INVALID_PARAMETER_VALUE whose body lists the broken rules as data, never a value.

    The body is ``model_code.contract.refusal``: the error code, a message for people and the
    ``violations`` (field, rule, rows) the facade reads.

    NB: MLflow's scoring server rewrites the message of any MlflowException raised by predict to
    ``Failed to predict data '<the whole DataFrame>'`` + the message before it serialises the
    exception (``mlflow.pyfunc.scoring_server.invocations``); this class serialises its body from
    the violations alone, so that rewritten text never reaches the response.
    """

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        body = refusal(self.violations)
        super().__init__(str(body["message"]), error_code=ErrorCode.Value(REFUSAL_ERROR_CODE))

    def serialize_as_json(self) -> str:
        return json.dumps(refusal(self.violations))


class CreditScoreModel(PythonModel):
    """Scores applicants: probabilities, risk score, decision and confidence per row."""

    def load_context(self, context: PythonModelContext) -> None:
        config: dict[str, Any] = dict(context.model_config or {})
        # NB: training always sets it (its default is the MLproject's); no second default here.
        self.threshold = float(config[THRESHOLD_PARAM])
        self.run_id = str(config.get("run_id", ""))
        self.pipeline = load_pipeline(context.artifacts[PIPELINE_ARTIFACT])
        self.inference = os.environ.get(INFERENCE_ENV) or "fast"
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
            raise InvalidApplicantData(exc.violations) from None
        explanation = self.fast.explain(applicants)
        if self.inference == "sklearn":
            risk = self.pipeline.predict_proba(applicants.to_frame())[:, 1].astype("float64")
        else:
            risk = explanation.risk
        columns = decide(risk, self.threshold)
        columns["reasons"] = principal_reasons(explanation.contributions)
        columns["model_run_id"] = [self.run_id] * len(risk)
        # NB: one DataFrame built once from a dict already in contract order: assigning column by
        # column, or passing `columns=`, costs more than the trees for one applicant. Every column is
        # an array or list of this call's own, none shared by two columns (see decide), so pandas
        # need not copy them (a fifth of the frame's cost for one row).
        return pd.DataFrame(row_of(columns), copy=False)
