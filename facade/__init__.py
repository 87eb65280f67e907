"""The public REST facade of the credit-scoring service, in front of MLflow's scoring server.

Clients call ``/api/v1/...``; the facade validates strictly against ``model_code.schema``,
forwards one ``/invocations`` call per request to ``mlflow models serve``, names the
registered model version that answered, and exports Prometheus metrics. It never imports
mlflow, pandas, numpy or scikit-learn.
"""
