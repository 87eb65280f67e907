"""`mlflow run . --env-manager local` end to end: registration, aliases, and what the model holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TEST_N_ESTIMATORS, TEST_N_SAMPLES, TrackingStore, create_experiment, mlflow_run

pytestmark = pytest.mark.integration


def test_first_run_registers_version_1_as_champion(sqlite_store: TrackingStore) -> None:
    client = MlflowClient(tracking_uri=sqlite_store.tracking_uri)

    champion = client.get_model_version_by_alias("credit-score", "champion")

    assert str(champion.version) == "1"
    run = client.get_run(str(champion.run_id))
    assert run.data.tags["registry_alias"] == "champion"
    assert run.data.tags["data_seed"] == "42"
    assert "git_commit" in run.data.tags
    for metric in ("roc_auc", "gini", "ks", "accuracy", "precision", "recall", "f1", "log_loss", "brier"):
        assert f"test_{metric}" in run.data.metrics
    assert run.data.metrics["test_roc_auc"] > 0.65
    assert run.data.params["n_estimators"] == "40"
    plots = {Path(a.path).name for a in client.list_artifacts(str(champion.run_id), "plots")}
    assert {
        "roc_curve.png",
        "calibration_curve.png",
        "confusion_matrix.png",
        "feature_importance.png",
    } <= plots
    assert run.inputs is not None
    assert [i.dataset.name for i in run.inputs.dataset_inputs] == ["synthetic-applicants"]


def test_run_logs_calibration_fairness_drift_reference_and_model_card(sqlite_store: TrackingStore) -> None:
    client = MlflowClient(tracking_uri=sqlite_store.tracking_uri)
    run = client.get_run(str(client.get_model_version_by_alias("credit-score", "champion").run_id))

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    fairness = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "fairness")}
    plots = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "plots")}

    assert {"model_card.md", "drift_reference.json"} <= artifacts
    assert fairness == {"fairness_by_age_band.csv", "fairness_by_age_band.md"}
    assert "reliability_diagram.png" in plots
    assert run.data.tags["fairness_gate"] == "passed"
    assert run.data.tags["calibration_applied"] in {"true", "false"}
    for metric in ("brier_uncalibrated", "brier_calibrated", "ece_uncalibrated", "ece_calibrated"):
        assert f"test_{metric}" in run.data.metrics
    assert "fairness_demographic_parity_difference" in run.data.metrics
    assert run.data.params["score_base_points"] == "600.0"
    card = Path(client.download_artifacts(run.info.run_id, "model_card.md", str(sqlite_store.root)))
    assert "## Fairness (test split, by age band)" in card.read_text()


def test_logged_model_directory_holds_no_pickle(sqlite_store: TrackingStore) -> None:
    client = MlflowClient(tracking_uri=sqlite_store.tracking_uri)
    source = client.get_model_version_download_uri("credit-score", "1")
    model_dir = Path(source.removeprefix("file://"))

    files = [p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()]

    assert "artifacts/pipeline.skops" in files
    assert "code/model_code/schema.py" in files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib", ".cloudpickle"))]
    assert "python_model.pkl" not in files


def test_a_worse_model_becomes_challenger_and_leaves_the_champion(sqlite_store: TrackingStore) -> None:
    client = MlflowClient(tracking_uri=sqlite_store.tracking_uri)

    mlflow_run(sqlite_store, "n_samples=2000", "n_estimators=2", "max_depth=1")

    assert str(client.get_model_version_by_alias("credit-score", "champion").version) == "1"
    challenger = client.get_model_version_by_alias("credit-score", "challenger")
    assert str(challenger.version) == "2"
    reason = client.get_run(str(challenger.run_id)).data.tags["registry_decision"]
    assert "< champion v1" in reason
    # Aliases only: no deprecated registry stage is ever set.
    assert {client.get_model_version("credit-score", v).current_stage for v in ("1", "2")} <= {"None", None}


def test_a_model_over_the_fairness_bound_is_never_made_champion(sqlite_store: TrackingStore) -> None:
    client = MlflowClient(tracking_uri=sqlite_store.tracking_uri)
    before = str(client.get_model_version_by_alias("credit-score", "champion").version)

    # The same data and parameters as the champion (so an equal AUC), but a bound of zero.
    mlflow_run(
        sqlite_store, f"n_samples={TEST_N_SAMPLES}", f"n_estimators={TEST_N_ESTIMATORS}", "fairness_max_gap=0"
    )

    latest = max(client.search_model_versions("name='credit-score'"), key=lambda v: int(v.version))
    run = client.get_run(str(latest.run_id))
    assert str(client.get_model_version_by_alias("credit-score", "champion").version) == before
    assert run.data.tags["fairness_gate"] == "failed"
    assert run.data.tags["registry_alias"] == "challenger"
    assert "never promoted automatically" in run.data.tags["registry_decision"]


def test_generate_data_then_train_use_the_mlproject_defaults(tmp_path: Path) -> None:
    """The MLproject is the one home of the defaults: the entry points run on them alone."""
    store = TrackingStore(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    create_experiment(store, tmp_path / "artifacts")
    data = tmp_path / "applicants.csv"

    mlflow_run(store, "n_samples=1000", f"output={data}", entry_point="generate_data")
    mlflow_run(store, f"data_path={data}", "n_estimators=5", entry_point="train")

    client = MlflowClient(tracking_uri=store.tracking_uri)
    experiment = client.get_experiment_by_name(store.experiment)
    assert experiment is not None
    (run,) = client.search_runs(
        [experiment.experiment_id],
        filter_string="params.data_path != ''",
    )
    assert run.data.params["decision_threshold"] == "0.5"
    assert run.data.params["max_depth"] == "12"
    assert run.data.params["data_source"] == str(data)
    assert "registry_alias" not in run.data.tags  # NB: train never registers
    assert len(data.read_text().splitlines()) == 1 + 1000
