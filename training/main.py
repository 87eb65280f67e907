"""The MLproject's entry point: generate (or read) applicants, train, evaluate, log the pyfunc, register.

Run it as ``mlflow run . --env-manager local`` (entry points ``main`` and ``train``); every stage
prints its progress and everything is logged to the active MLflow run.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import click
import mlflow
import numpy as np
import pandas as pd
import skops.io
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models.model import ModelInfo

from model_code.pyfunc import PIPELINE_ARTIFACT, model_input, signature
from model_code.schema import EXAMPLE_APPLICANTS, FEATURES, Feature
from training import evaluate
from training.data import TARGET, generate_applicants
from training.register import register
from training.train import Splits, build_pipeline, fit, split

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_CODE = PROJECT_ROOT / "model_code"

# NB: the model's runtime dependencies, pinned to what is installed now, i.e. what was tested;
# conda.yaml and pyproject.toml carry the same pins (a test keeps them equal).
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")


def runtime_requirements() -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in RUNTIME_PACKAGES]


def _echo(stage: str, message: str) -> None:
    click.echo(f"[{stage}] {message}", err=False)


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


def log_pyfunc(pipeline: object, threshold: float, run_id: str) -> ModelInfo:
    """Log the models-from-code pyfunc with the pipeline saved by skops (no pickle)."""
    with tempfile.TemporaryDirectory() as tmp:
        pipeline_path = Path(tmp) / "pipeline.skops"
        skops.io.dump(pipeline, pipeline_path)
        info: ModelInfo = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE / "credit_model.py"),
            artifacts={PIPELINE_ARTIFACT: str(pipeline_path)},
            code_paths=[str(MODEL_CODE)],
            signature=signature(),
            input_example=model_input(list(EXAMPLE_APPLICANTS.values())),
            model_config={"decision_threshold": threshold, "run_id": run_id},
            pip_requirements=runtime_requirements(),
            metadata={"features": [_feature_dict(f) for f in FEATURES]},
        )
        return info


def _feature_dict(feature: Feature) -> dict[str, object]:
    data = asdict(feature)
    data["categories"] = list(data["categories"])
    return data


def run_training(
    *,
    n_samples: int,
    n_estimators: int,
    max_depth: int,
    min_samples_leaf: int,
    seed: int,
    decision_threshold: float,
    model_name: str,
    data_path: Path | None,
    do_register: bool,
) -> None:
    """One MLflow run: every stage of the flow, logged."""
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        _echo("run", f"MLflow run {run_id} on {mlflow.get_tracking_uri()}")
        started = time.perf_counter()

        if data_path is None:
            frame = generate_applicants(n_samples, seed)
            source = f"generated (n_samples={n_samples}, seed={seed})"
        else:
            frame = pd.read_csv(data_path)
            source = str(data_path)
        _echo("data", f"{len(frame):,} applicants from {source}, default rate {frame[TARGET].mean():.1%}")
        with warnings.catch_warnings():
            # NB: MLflow hints that integer columns cannot hold missing values; ours never do.
            warnings.simplefilter("ignore", UserWarning)
            dataset = from_pandas(frame, name="synthetic-applicants", targets=TARGET)
        mlflow.log_input(dataset, context="training")

        splits = split(frame, seed)
        _echo(
            "split",
            f"train {len(splits.train):,} / validation {len(splits.validation):,} / "
            f"test {len(splits.test):,} (stratified)",
        )
        params = {
            "n_samples": len(frame),
            "n_estimators": n_estimators,
            "max_depth": max_depth,
            "min_samples_leaf": min_samples_leaf,
            "seed": seed,
            "decision_threshold": decision_threshold,
            "model_name": model_name,
            "data_source": source,
        }
        mlflow.log_params(params)
        mlflow.set_tags({"git_commit": _git_commit(), "data_seed": str(seed)})

        fit_started = time.perf_counter()
        pipeline = fit(build_pipeline(n_estimators, max_depth, min_samples_leaf, seed), splits.train)
        fit_seconds = time.perf_counter() - fit_started
        _echo("train", f"RandomForest {n_estimators} trees, depth {max_depth}, fitted in {fit_seconds:.1f} s")

        test_x, test_y = Splits.features(splits.test), splits.test[TARGET].to_numpy()
        val_x, val_y = Splits.features(splits.validation), splits.validation[TARGET].to_numpy()
        test_risk = pipeline.predict_proba(test_x)[:, 1]
        val_risk = pipeline.predict_proba(val_x)[:, 1]
        metrics = {
            f"test_{k}": v
            for k, v in evaluate.classification_metrics(test_y, test_risk, decision_threshold).items()
        }
        metrics |= {
            f"validation_{k}": v
            for k, v in evaluate.classification_metrics(val_y, val_risk, decision_threshold).items()
        }
        metrics["fit_seconds"] = fit_seconds
        mlflow.log_metrics(metrics)
        _echo(
            "evaluate",
            f"test ROC AUC {metrics['test_roc_auc']:.4f}, Gini {metrics['test_gini']:.4f}, "
            f"KS {metrics['test_ks']:.4f}, Brier {metrics['test_brier']:.4f}",
        )
        with tempfile.TemporaryDirectory() as tmp:
            for path in evaluate.write_plots(pipeline, test_y, test_risk, decision_threshold, Path(tmp)):
                mlflow.log_artifact(str(path), artifact_path="plots")
        _echo("evaluate", "plots logged: ROC, calibration, confusion matrix, feature importance")

        info = log_pyfunc(pipeline, decision_threshold, run_id)
        _echo("model", f"pyfunc logged as {info.model_uri}")

        if do_register:
            decision = register(info.model_uri, model_name, metrics["test_roc_auc"], test_x, test_y)
            mlflow.set_tags(
                {
                    "registered_model": model_name,
                    "registered_version": decision.version,
                    "registry_alias": decision.alias,
                    "registry_decision": decision.reason,
                }
            )
            _echo(
                "register", f"{model_name} version {decision.version} → @{decision.alias}: {decision.reason}"
            )
        _echo("run", f"done in {time.perf_counter() - started:.1f} s")


@click.command()
@click.option("--n-samples", type=click.IntRange(min=500), default=20_000, show_default=True)
@click.option("--n-estimators", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--max-depth", type=click.IntRange(min=1), default=12, show_default=True)
@click.option("--min-samples-leaf", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--decision-threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
)
@click.option("--model-name", default="credit-score", show_default=True)
@click.option(
    "--data-path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Train on this CSV instead of generating applicants.",
)
@click.option("--register/--no-register", "do_register", default=True, show_default=True)
def main(**options: object) -> None:
    """Train the credit-score model and log it to the active MLflow tracking server."""
    np.seterr(all="ignore")
    run_training(**options)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
