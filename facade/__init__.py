"""The public REST facade of the credit-scoring service, in front of MLflow's scoring server.

Clients call ``/api/v1/...``; the facade validates strictly against ``model_code.schema``,
scores through ``mlflow models serve`` (``facade.upstream``), names the registered model version
that answered, and exports Prometheus metrics. It never imports mlflow, pandas, numpy or
scikit-learn. Layers, outermost first: ``main`` assembles; ``api`` holds the HTTP surface (routes,
dependencies, OpenAPI, validation wording); ``service`` decides what a prediction is; ``upstream``
calls the scoring server and the registry; ``core`` is the plumbing that knows no credit domain
(settings, problem+json, middleware, logs, HTTP metrics, limits, API keys). See
docs/architecture.md.
"""
