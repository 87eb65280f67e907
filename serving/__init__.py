"""The serving supervisor: `mlflow models serve` of the versions the registry's aliases name, swapped live."""
