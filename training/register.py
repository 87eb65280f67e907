"""Stage 4 of training: register the model and move the ``champion`` alias only when it wins.

A new version becomes champion when its test ROC AUC is at least the current champion's on the
same test rows (the champion is re-scored, not trusted from its old run), or when there is no
champion. Otherwise it gets the ``challenger`` alias and the run records why. A version that fails
a gate (the fairness gate, the credit-policy gate) is never made champion automatically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

from model_code.pyfunc import model_input
from model_code.tracking import CHALLENGER, CHAMPION


@dataclass(frozen=True)
class Decision:
    """What happened to the new version, and why (also logged as run tags)."""

    version: str
    alias: str
    reason: str
    champion_auc: float | None


def champion_auc_on(model_name: str, features: pd.DataFrame, labels: np.ndarray) -> tuple[str, float] | None:
    """The current champion's version and its ROC AUC on ``features``, or None without one."""
    client = MlflowClient()
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None
    champion = mlflow.pyfunc.load_model(f"models:/{model_name}/{current.version}")
    risk = champion.predict(model_input(features))["rejection_probability"].to_numpy(float)
    return current.version, float(roc_auc_score(labels, risk))


def register(
    model_uri: str,
    model_name: str,
    new_auc: float,
    features: pd.DataFrame,
    labels: np.ndarray,
    gate_problems: Sequence[str] = (),
) -> Decision:
    """Register ``model_uri`` under ``model_name`` and set ``champion`` or ``challenger``.

    A model that failed a gate (``gate_problems``: a fairness gap over the bound, any credit-policy
    violation) is never made champion automatically, whatever its AUC: a person has to look at it
    and move the alias by hand.
    """
    client = MlflowClient()
    previous = champion_auc_on(model_name, features, labels)
    version = mlflow.register_model(model_uri, model_name).version
    if gate_problems:
        alias, champion_auc = CHALLENGER, previous[1] if previous else None
        reason = "; ".join(gate_problems) + "; never promoted automatically"
    elif previous is None:
        alias, champion_auc = CHAMPION, None
        reason = "no champion yet"
    else:
        champion_version, champion_auc = previous
        if new_auc >= champion_auc:
            alias = CHAMPION
            reason = (
                f"test ROC AUC {new_auc:.4f} >= champion v{champion_version} "
                f"{champion_auc:.4f} on the same test rows"
            )
        else:
            alias = CHALLENGER
            reason = (
                f"test ROC AUC {new_auc:.4f} < champion v{champion_version} "
                f"{champion_auc:.4f} on the same test rows; champion unchanged"
            )
    client.set_registered_model_alias(model_name, alias, version)
    return Decision(str(version), alias, reason, champion_auc)
