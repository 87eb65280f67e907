"""The models-from-code entry point: MLflow executes this file to build the pyfunc it serves."""

import mlflow

from model_code.pyfunc import CreditScoreModel

mlflow.models.set_model(CreditScoreModel())
