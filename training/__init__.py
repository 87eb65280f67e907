"""Training as an MLflow Project: data → train → evaluate → register (one module per stage)."""
