"""The MLproject's entry point: generate (or read) applicants, train, evaluate, log the pyfunc, register.

Run it as ``mlflow run . --env-manager local`` (entry points ``main`` and ``train``); every stage
prints its progress and everything is logged to the active MLflow run.
"""

from __future__ import annotations

import importlib.metadata
import json
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
from sklearn.pipeline import Pipeline

from model_code.drift import REFERENCE_ARTIFACT
from model_code.pyfunc import PIPELINE_ARTIFACT, model_input, signature
from model_code.reasons import score_parameters
from model_code.schema import EXAMPLE_APPLICANTS, FEATURES, Feature
from training import evaluate
from training.calibrate import MODES, Mode, calibrate, reliability_diagram
from training.data import TARGET, generate_applicants
from training.fairness import fairness_report
from training.model_card import model_card
from training.reference import drift_reference
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


def log_pyfunc(pipeline: object, threshold: float, run_id: str, extras: dict[str, Path]) -> ModelInfo:
    """Log the models-from-code pyfunc with the pipeline saved by skops (no pickle).

    ``extras`` (the drift reference, the model card) travel inside the model as artifacts too.
    """
    with tempfile.TemporaryDirectory() as tmp:
        pipeline_path = Path(tmp) / "pipeline.skops"
        skops.io.dump(pipeline, pipeline_path)
        info: ModelInfo = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE / "credit_model.py"),
            artifacts={PIPELINE_ARTIFACT: str(pipeline_path), **{k: str(v) for k, v in extras.items()}},
            code_paths=[str(MODEL_CODE)],
            signature=signature(),
            input_example=model_input(list(EXAMPLE_APPLICANTS.values())),
            model_config={"decision_threshold": threshold, "run_id": run_id},
            pip_requirements=runtime_requirements(),
            metadata={"features": [_feature_dict(f) for f in FEATURES]},
        )
        return info


def _sigmoid_preview(
    pipeline: Pipeline, val_x: pd.DataFrame, val_y: np.ndarray, test_x: pd.DataFrame
) -> np.ndarray:
    """Test risk under the sigmoid calibrator that was not applied, for the reliability diagram."""
    from training.calibrate import _sigmoid_over

    encode = pipeline[:-1]
    calibrator = _sigmoid_over(pipeline.named_steps["model"], encode.transform(val_x), val_y)
    preview: np.ndarray = calibrator.predict_proba(encode.transform(test_x))[:, 1]
    return preview


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
    calibration_mode: Mode,
    fairness_max_gap: float,
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
            "calibration": calibration_mode,
            "fairness_max_gap": fairness_max_gap,
            **score_parameters(),
        }
        # NB: `mlflow run` has already logged the -P values as typed ("0" for 0.0, ".5" for 0.5);
        # logging our parsed value again under the same key would be refused as a change.
        already = mlflow.get_run(run_id).data.params
        mlflow.log_params({k: v for k, v in params.items() if k not in already})
        mlflow.set_tags({"git_commit": _git_commit(), "data_seed": str(seed)})

        fit_started = time.perf_counter()
        pipeline = fit(build_pipeline(n_estimators, max_depth, min_samples_leaf, seed), splits.train)
        fit_seconds = time.perf_counter() - fit_started
        _echo("train", f"RandomForest {n_estimators} trees, depth {max_depth}, fitted in {fit_seconds:.1f} s")

        test_x, test_y = Splits.features(splits.test), splits.test[TARGET].to_numpy()
        val_x, val_y = Splits.features(splits.validation), splits.validation[TARGET].to_numpy()
        raw_test_risk = pipeline.predict_proba(test_x)[:, 1]
        calibration = calibrate(pipeline, (val_x, val_y), (test_x, test_y), calibration_mode, seed)
        _echo("calibrate", calibration.reason)

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
        metrics |= calibration.metrics
        metrics["fit_seconds"] = fit_seconds

        fairness = fairness_report(test_x["age"], test_y, test_risk, decision_threshold)
        metrics["fairness_demographic_parity_difference"] = fairness.demographic_parity_difference
        metrics["fairness_equalized_odds_difference"] = fairness.equalized_odds_difference
        fairness_problem = (
            f"fairness gap {fairness.gap():.3f} across age bands exceeds the bound {fairness_max_gap:.3f}"
            if fairness.gap() > fairness_max_gap
            else None
        )
        mlflow.log_metrics(metrics)
        mlflow.set_tags(
            {
                "calibration_applied": str(calibration.applied).lower(),
                "calibration_decision": calibration.reason,
                "fairness_gate": "failed" if fairness_problem else "passed",
            }
        )
        _echo(
            "evaluate",
            f"test ROC AUC {metrics['test_roc_auc']:.4f}, Gini {metrics['test_gini']:.4f}, "
            f"KS {metrics['test_ks']:.4f}, Brier {metrics['test_brier']:.4f}",
        )
        _echo(
            "fairness",
            f"demographic parity difference {fairness.demographic_parity_difference:.3f}, equalized odds "
            f"difference {fairness.equalized_odds_difference:.3f} (bound {fairness_max_gap:.3f})",
        )

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for path in evaluate.write_plots(pipeline, test_y, test_risk, decision_threshold, folder):
                mlflow.log_artifact(str(path), artifact_path="plots")
            calibrated_test = raw_test_risk if not calibration.applied else test_risk
            diagram = reliability_diagram(
                test_y,
                raw_test_risk,
                calibrated_test if calibration.applied else _sigmoid_preview(pipeline, val_x, val_y, test_x),
                folder / "reliability_diagram.png",
            )
            mlflow.log_artifact(str(diagram), artifact_path="plots")
            fairness.table.to_csv(folder / "fairness_by_age_band.csv")
            (folder / "fairness_by_age_band.md").write_text(fairness.markdown() + "\n")
            mlflow.log_artifact(str(folder / "fairness_by_age_band.csv"), artifact_path="fairness")
            mlflow.log_artifact(str(folder / "fairness_by_age_band.md"), artifact_path="fairness")

            reference = folder / REFERENCE_ARTIFACT
            train_features = Splits.features(splits.train)
            reference.write_text(json.dumps(drift_reference(train_features, test_risk)))
            card = folder / "model_card.md"
            card.write_text(
                model_card(
                    model_name=model_name,
                    run_id=run_id,
                    params=params,
                    metrics=metrics,
                    calibration_reason=calibration.reason,
                    fairness_table=fairness.markdown(),
                    fairness_gap=fairness.gap(),
                    fairness_bound=fairness_max_gap,
                )
            )
            mlflow.log_artifact(str(reference))
            mlflow.log_artifact(str(card))
            _echo(
                "evaluate",
                "plots, reliability diagram, fairness table, drift reference and model card logged",
            )

            info = log_pyfunc(
                pipeline, decision_threshold, run_id, {"drift_reference": reference, "model_card": card}
            )
        _echo("model", f"pyfunc logged as {info.model_uri}")

        if do_register:
            decision = register(
                info.model_uri, model_name, metrics["test_roc_auc"], test_x, test_y, fairness_problem
            )
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
@click.option(
    "--calibration",
    "calibration_mode",
    type=click.Choice(MODES),
    default="auto",
    show_default=True,
    help="auto: apply sigmoid calibration only when it lowers the cross-fitted validation Brier score.",
)
@click.option(
    "--fairness-max-gap",
    type=click.FloatRange(0.0, 1.0),
    default=0.15,
    show_default=True,
    help="Largest demographic parity or equalized odds difference across age bands for automatic promotion.",
)
def main(**options: object) -> None:
    """Train the credit-score model and log it to the active MLflow tracking server."""
    np.seterr(all="ignore")
    run_training(**options)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
