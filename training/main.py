"""The MLproject's entry point: generate (or read) applicants, train, evaluate, log the pyfunc, register.

Run it as ``mlflow run . --env-manager local`` (entry points ``main`` and ``train``); the MLproject
declares every parameter and its default, and this command requires them all. ``run_training``
reads as the flow: one call per stage over one ``TrainingConfig``, each stage printing its progress
and logging to the active MLflow run.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
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
from model_code.pyfunc import PIPELINE_ARTIFACT, model_input, model_metadata, signature
from model_code.reasons import score_parameters
from model_code.schema import EXAMPLE_APPLICANTS
from model_code.tracking import MODEL_CARD_ARTIFACT, TEST_METRIC_PREFIX, THRESHOLD_PARAM
from training import evaluate
from training.calibrate import MODES, Calibration, Mode, calibrate, reliability_diagram
from training.data import TARGET, generate_applicants
from training.fairness import FairnessReport, fairness_report
from training.model_card import model_card
from training.policy import PolicyReport, policy_report
from training.reference import drift_reference
from training.register import Decision, register
from training.train import Splits, build_pipeline, fit, split

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_CODE = PROJECT_ROOT / "model_code"

# NB: the model's runtime dependencies, pinned to what is installed now, i.e. what was tested;
# conda.yaml and pyproject.toml carry the same pins (a test keeps them equal).
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")


@dataclass(frozen=True)
class TrainingConfig:
    """One training run's parameters, as the MLproject passes them."""

    n_samples: int | None  # NB: None with a data_path: the CSV's rows are the sample
    n_estimators: int
    max_depth: int
    min_samples_leaf: int
    seed: int
    decision_threshold: float
    model_name: str
    data_path: Path | None
    register: bool
    calibration: Mode
    fairness_max_gap: float


@dataclass(frozen=True)
class Evaluation:
    """What the held-out splits say about the model to ship: metrics, fairness, credit policy, gates."""

    metrics: dict[str, float]
    fairness: FairnessReport
    policy: PolicyReport
    # NB: the unconstrained twin's policy counts: what the constraints prevent, for the model card.
    twin_policy: PolicyReport
    # NB: why the model may not be promoted automatically (each failed gate), empty when it may.
    problems: tuple[str, ...]
    test_risk: np.ndarray


def runtime_requirements() -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in RUNTIME_PACKAGES]


def _echo(stage: str, message: str) -> None:
    click.echo(f"[{stage}] {message}")


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


def run_training(config: TrainingConfig) -> None:
    """One MLflow run: every stage of the flow, logged."""
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        _echo("run", f"MLflow run {run_id} on {mlflow.get_tracking_uri()}")
        started = time.perf_counter()
        frame, source = load_data(config)
        splits = split_data(frame, config)
        params = log_params(config, run_id, n_samples=len(frame), source=source)
        pipeline, fit_seconds = train_model(config, splits)
        calibration = calibrate_model(config, pipeline, splits)
        twin = train_unconstrained_twin(config, splits)
        evaluation = evaluate_model(config, calibration, twin, splits, fit_seconds)
        info = log_artifacts_and_model(config, run_id, params, calibration, evaluation, splits)
        if config.register:
            register_model(config, info, evaluation, splits)
        _echo("run", f"done in {time.perf_counter() - started:.1f} s")


def load_data(config: TrainingConfig) -> tuple[pd.DataFrame, str]:
    """Stage 1: generated applicants (or the CSV given), logged as the run's dataset input."""
    if config.data_path is None:
        if config.n_samples is None:
            raise click.UsageError("give --n-samples to generate applicants, or --data-path to read them")
        frame = generate_applicants(config.n_samples, config.seed)
        source = f"generated (n_samples={config.n_samples}, seed={config.seed})"
    else:
        frame = pd.read_csv(config.data_path)
        source = str(config.data_path)
    _echo("data", f"{len(frame):,} applicants from {source}, default rate {frame[TARGET].mean():.1%}")
    with warnings.catch_warnings():
        # NB: MLflow hints that integer columns cannot hold missing values; ours never do.
        warnings.simplefilter("ignore", UserWarning)
        mlflow.log_input(from_pandas(frame, name="synthetic-applicants", targets=TARGET), context="training")
    return frame, source


def split_data(frame: pd.DataFrame, config: TrainingConfig) -> Splits:
    splits = split(frame, config.seed)
    _echo(
        "split",
        f"train {len(splits.train):,} / validation {len(splits.validation):,} / "
        f"test {len(splits.test):,} (stratified)",
    )
    return splits


def log_params(config: TrainingConfig, run_id: str, *, n_samples: int, source: str) -> dict[str, object]:
    """The run's parameters (with the score scale's) and its provenance tags."""
    params: dict[str, object] = {
        "n_samples": n_samples,
        "n_estimators": config.n_estimators,
        "max_depth": config.max_depth,
        "min_samples_leaf": config.min_samples_leaf,
        "seed": config.seed,
        THRESHOLD_PARAM: config.decision_threshold,
        "model_name": config.model_name,
        "data_source": source,
        "calibration": config.calibration,
        "fairness_max_gap": config.fairness_max_gap,
        **score_parameters(),
    }
    # NB: `mlflow run` has already logged the -P values as typed ("0" for 0.0, ".5" for 0.5);
    # logging our parsed value again under the same key would be refused as a change.
    already = mlflow.get_run(run_id).data.params
    mlflow.log_params({k: v for k, v in params.items() if k not in already})
    mlflow.set_tags({"git_commit": _git_commit(), "data_seed": str(config.seed)})
    return params


def train_model(config: TrainingConfig, splits: Splits) -> tuple[Pipeline, float]:
    """Stage 2: the pipeline fitted on the training split, and how long the fit took."""
    started = time.perf_counter()
    pipeline = fit(
        build_pipeline(config.n_estimators, config.max_depth, config.min_samples_leaf, config.seed),
        splits.train,
    )
    fit_seconds = time.perf_counter() - started
    _echo(
        "train",
        f"RandomForest {config.n_estimators} trees, depth {config.max_depth}, fitted in {fit_seconds:.1f} s",
    )
    return pipeline, fit_seconds


def calibrate_model(config: TrainingConfig, pipeline: Pipeline, splits: Splits) -> Calibration:
    """Stage 3a: the pipeline to ship, calibrated only when it helps on held-out rows."""
    calibration = _calibrated(config, pipeline, splits)
    mlflow.set_tags(
        {"calibration_applied": str(calibration.applied).lower(), "calibration_decision": calibration.reason}
    )
    _echo("calibrate", calibration.reason)
    return calibration


def _calibrated(config: TrainingConfig, pipeline: Pipeline, splits: Splits) -> Calibration:
    return calibrate(
        pipeline,
        (Splits.features(splits.validation), splits.validation[TARGET].to_numpy()),
        (Splits.features(splits.test), splits.test[TARGET].to_numpy()),
        config.calibration,
        config.seed,
    )


def train_unconstrained_twin(config: TrainingConfig, splits: Splits) -> Pipeline:
    """Stage 3a': the same model without the credit policy, to measure what the policy costs.

    Same data, seed, hyperparameters and calibration rule; never logged as a model, never shipped.
    NB: it doubles the fitting time, so that every run's model card states the cost on its own data.
    """
    started = time.perf_counter()
    twin = fit(
        build_pipeline(
            config.n_estimators, config.max_depth, config.min_samples_leaf, config.seed, constrained=False
        ),
        splits.train,
    )
    shipped = _calibrated(config, twin, splits).pipeline
    _echo("train", f"unconstrained twin for comparison, fitted in {time.perf_counter() - started:.1f} s")
    return shipped


def risk_of(pipeline: Pipeline) -> Callable[[pd.DataFrame], np.ndarray]:
    """Probabilities of default by the pipeline, which the pyfunc's fast path equals bit for bit.

    NB: the gate scores about 200,000 rows; scikit-learn's batch prediction is the quicker there,
    and the behavioural tests score the logged pyfunc itself.
    """
    return lambda applicants: np.asarray(pipeline.predict_proba(applicants)[:, 1], dtype=np.float64)


def evaluate_model(
    config: TrainingConfig, calibration: Calibration, twin: Pipeline, splits: Splits, fit_seconds: float
) -> Evaluation:
    """Stage 3b: test and validation metrics, calibration figures, fairness by age band and the
    credit-policy gate (with the unconstrained twin's figures beside), logged."""
    shipped, threshold = calibration.pipeline, config.decision_threshold
    test_x, test_y = Splits.features(splits.test), splits.test[TARGET].to_numpy()
    val_x, val_y = Splits.features(splits.validation), splits.validation[TARGET].to_numpy()
    test_risk = shipped.predict_proba(test_x)[:, 1]
    val_risk = shipped.predict_proba(val_x)[:, 1]
    metrics = {
        f"{TEST_METRIC_PREFIX}{k}": v
        for k, v in evaluate.classification_metrics(test_y, test_risk, threshold).items()
    }
    metrics |= {
        f"validation_{k}": v for k, v in evaluate.classification_metrics(val_y, val_risk, threshold).items()
    }
    metrics |= calibration.metrics
    metrics["fit_seconds"] = fit_seconds
    twin_metrics = evaluate.classification_metrics(test_y, twin.predict_proba(test_x)[:, 1], threshold)
    metrics |= {f"unconstrained_{TEST_METRIC_PREFIX}{k}": twin_metrics[k] for k in ("roc_auc", "ks", "brier")}

    fairness = fairness_report(test_x["age"], test_y, test_risk, threshold)
    metrics["fairness_demographic_parity_difference"] = fairness.demographic_parity_difference
    metrics["fairness_equalized_odds_difference"] = fairness.equalized_odds_difference
    fairness_problem = (
        f"fairness gap {fairness.gap():.3f} across age bands exceeds the bound {config.fairness_max_gap:.3f}"
        if fairness.gap() > config.fairness_max_gap
        else None
    )
    policy = policy_report(risk_of(shipped), test_x)
    twin_policy = policy_report(risk_of(twin), test_x)
    metrics |= policy.metrics()
    mlflow.log_metrics(metrics)
    mlflow.set_tags(
        {
            "fairness_gate": "failed" if fairness_problem else "passed",
            "policy_gate": "failed" if policy.violations else "passed",
        }
    )
    _echo(
        "evaluate",
        f"test ROC AUC {metrics['test_roc_auc']:.4f}, Gini {metrics['test_gini']:.4f}, "
        f"KS {metrics['test_ks']:.4f}, Brier {metrics['test_brier']:.4f}",
    )
    _echo(
        "evaluate",
        f"unconstrained twin: test ROC AUC {metrics['unconstrained_test_roc_auc']:.4f}, "
        f"KS {metrics['unconstrained_test_ks']:.4f}, Brier {metrics['unconstrained_test_brier']:.4f}",
    )
    _echo(
        "fairness",
        f"demographic parity difference {fairness.demographic_parity_difference:.3f}, equalized odds "
        f"difference {fairness.equalized_odds_difference:.3f} (bound {config.fairness_max_gap:.3f})",
    )
    _echo(
        "policy",
        f"{policy.violations} violations on {len(test_x):,} test applicants "
        f"(unconstrained twin: {twin_policy.violations})",
    )
    problems = tuple(p for p in (fairness_problem, policy.problem()) if p is not None)
    return Evaluation(metrics, fairness, policy, twin_policy, problems, test_risk)


def log_artifacts_and_model(
    config: TrainingConfig,
    run_id: str,
    params: dict[str, object],
    calibration: Calibration,
    evaluation: Evaluation,
    splits: Splits,
) -> ModelInfo:
    """Stage 3c–5: plots, fairness table, drift reference and model card, then the pyfunc itself."""
    test_y = splits.test[TARGET].to_numpy()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plots = evaluate.write_plots(
            calibration.pipeline, test_y, evaluation.test_risk, config.decision_threshold, folder
        )
        plots.append(
            reliability_diagram(
                test_y, calibration.raw_test, calibration.sigmoid_test, folder / "reliability_diagram.png"
            )
        )
        for path in plots:
            mlflow.log_artifact(str(path), artifact_path="plots")
        evaluation.fairness.table.to_csv(folder / "fairness_by_age_band.csv")
        (folder / "fairness_by_age_band.md").write_text(evaluation.fairness.markdown() + "\n")
        for name in ("fairness_by_age_band.csv", "fairness_by_age_band.md"):
            mlflow.log_artifact(str(folder / name), artifact_path="fairness")
        (folder / "policy_gate.md").write_text(evaluation.policy.markdown(evaluation.twin_policy) + "\n")
        mlflow.log_artifact(str(folder / "policy_gate.md"), artifact_path="policy")

        reference = folder / REFERENCE_ARTIFACT
        reference.write_text(json.dumps(drift_reference(Splits.features(splits.train), evaluation.test_risk)))
        card = folder / MODEL_CARD_ARTIFACT
        card.write_text(
            model_card(
                model_name=config.model_name,
                run_id=run_id,
                params=params,
                metrics=evaluation.metrics,
                calibration_reason=calibration.reason,
                fairness_table=evaluation.fairness.markdown(),
                fairness_gap=evaluation.fairness.gap(),
                fairness_bound=config.fairness_max_gap,
                policy_table=evaluation.policy.markdown(evaluation.twin_policy),
                policy_violations=evaluation.policy.violations,
            )
        )
        mlflow.log_artifact(str(reference))
        mlflow.log_artifact(str(card))
        _echo(
            "evaluate",
            "plots, reliability diagram, fairness and policy tables, drift reference and model card logged",
        )

        info = log_pyfunc(
            calibration.pipeline,
            config.decision_threshold,
            run_id,
            {"drift_reference": reference, "model_card": card},
        )
    _echo("model", f"pyfunc logged as {info.model_uri}")
    return info


def log_pyfunc(pipeline: Pipeline, threshold: float, run_id: str, extras: dict[str, Path]) -> ModelInfo:
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
            model_config={THRESHOLD_PARAM: threshold, "run_id": run_id},
            pip_requirements=runtime_requirements(),
            metadata=model_metadata(),
        )
        return info


def register_model(
    config: TrainingConfig, info: ModelInfo, evaluation: Evaluation, splits: Splits
) -> Decision:
    """Stage 6: a registered version, and the champion alias moved only if it wins."""
    decision = register(
        info.model_uri,
        config.model_name,
        evaluation.metrics["test_roc_auc"],
        Splits.features(splits.test),
        splits.test[TARGET].to_numpy(),
        evaluation.problems,
    )
    mlflow.set_tags(
        {
            "registered_model": config.model_name,
            "registered_version": decision.version,
            "registry_alias": decision.alias,
            "registry_decision": decision.reason,
        }
    )
    _echo(
        "register", f"{config.model_name} version {decision.version} → @{decision.alias}: {decision.reason}"
    )
    return decision


# NB: no defaults here: the MLproject is their one home (`mlflow run .` always passes them all).
@click.command()
@click.option("--n-samples", type=click.IntRange(min=500), default=None, help="Applicants to generate.")
@click.option("--n-estimators", type=click.IntRange(min=1), required=True)
@click.option("--max-depth", type=click.IntRange(min=1), required=True)
@click.option("--min-samples-leaf", type=click.IntRange(min=1), required=True)
@click.option("--seed", type=int, required=True)
@click.option(
    "--decision-threshold", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), required=True
)
@click.option("--model-name", required=True)
@click.option(
    "--data-path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Train on this CSV instead of generating applicants.",
)
@click.option("--register/--no-register", "register_model_", required=True)
@click.option(
    "--calibration",
    type=click.Choice(MODES),
    required=True,
    help="auto: apply sigmoid calibration only when it lowers the cross-fitted validation Brier score.",
)
@click.option(
    "--fairness-max-gap",
    type=click.FloatRange(0.0, 1.0),
    required=True,
    help="Largest demographic parity or equalized odds difference across age bands for automatic promotion.",
)
def main(register_model_: bool, **options: object) -> None:
    """Train the credit-score model and log it to the active MLflow tracking server."""
    np.seterr(all="ignore")
    run_training(TrainingConfig(register=register_model_, **options))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
