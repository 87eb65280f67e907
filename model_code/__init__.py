"""Code that ships inside the logged MLflow model: the applicant schema, preprocessing and the pyfunc.

Importing this package imports nothing else: the facade uses ``model_code.schema`` without
pandas, scikit-learn or mlflow installed.
"""
