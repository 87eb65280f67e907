"""The credit policy, on the model a real `mlflow run .` logged and registered as champion.

Loaded with ``mlflow.pyfunc.load_model`` and scored through ``predict`` as a data scientist would,
on 10,000 generated applicants and 5,000 drawn anywhere within the schema's bounds: along every
field with a direction the risk never moves the wrong way (exactly, applicant by applicant), no
elderly applicant is scored worse than at 61, age moves nothing, and every reason returned names
a field whose move in its safe direction would not raise the risk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from model_code.pyfunc import model_input
from model_code.schema import CONSTRAINED_FEATURES, ELDERLY_AGE, FEATURES, RATIOS, Feature
from tests.conftest import TrackingStore, create_experiment
from training.data import TARGET, generate_applicants
from training.main import log_pyfunc, risk_of
from training.policy import policy_report, stepped
from training.register import register
from training.train import Splits, build_pipeline, fit, split

pytestmark = pytest.mark.integration

N_GENERATED, N_ANYWHERE = 10_000, 5_000


class Champion:
    """The registered champion, loaded as a pyfunc: risk and reasons per applicant."""

    def __init__(self, store: TrackingStore) -> None:
        client = MlflowClient(tracking_uri=store.tracking_uri)
        version = client.get_model_version_by_alias("credit-score", "champion")
        self.run_id = str(version.run_id)
        self.model = mlflow.pyfunc.load_model(
            client.get_model_version_download_uri("credit-score", version.version)
        )

    def score(self, applicants: pd.DataFrame) -> pd.DataFrame:
        out: pd.DataFrame = self.model.predict(model_input(applicants))
        return out

    def risk(self, applicants: pd.DataFrame) -> np.ndarray:
        return self.score(applicants)["risk_score"].to_numpy(float)


@pytest.fixture(scope="module")
def champion(sqlite_store: TrackingStore) -> Champion:
    return Champion(sqlite_store)


def _anywhere(n: int, seed: int) -> pd.DataFrame:
    """Applicants spread over the schema's whole domain: money log-uniform, counts uniform, any category."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for f in FEATURES:
        if f.kind == "category":
            columns[f.name] = rng.choice(np.array(f.categories), size=n)
            continue
        assert f.minimum is not None
        assert f.maximum is not None
        if f.kind == "integer":
            columns[f.name] = rng.integers(int(f.minimum), int(f.maximum), size=n, endpoint=True)
        else:
            low = max(f.minimum, 1.0)
            money = np.exp(rng.uniform(np.log(low), np.log(f.maximum), size=n)).round(2)
            # NB: a few exact zeros (no income, no debt) and maxima: the corners of the domain.
            money[rng.random(n) < 0.02] = f.minimum
            money[rng.random(n) < 0.02] = f.maximum
            columns[f.name] = np.clip(money, f.minimum, f.maximum)
    return pd.DataFrame(columns)


@pytest.fixture(scope="module", params=["generated", "anywhere in bounds"])
def applicants(request: pytest.FixtureRequest) -> pd.DataFrame:
    if request.param == "generated":
        return generate_applicants(N_GENERATED, seed=2027).drop(columns=[TARGET])
    return _anywhere(N_ANYWHERE, seed=2028)


def _moved_at_random(applicants: pd.DataFrame, feature: Feature, seed: int) -> pd.DataFrame:
    """Each applicant's ``feature`` raised by a random share of the way to its maximum."""
    assert feature.maximum is not None
    values = applicants[feature.name].to_numpy(float)
    raised = values + np.random.default_rng(seed).random(len(values)) * (feature.maximum - values)
    if feature.kind == "integer":
        raised = np.floor(raised)
    return applicants.assign(**{feature.name: raised.astype(applicants[feature.name].to_numpy().dtype)})


def _wrong_way(feature: Feature, before: np.ndarray, after: np.ndarray) -> int:
    return int((after < before).sum() if feature.direction == "up" else (after > before).sum())


@pytest.mark.parametrize("feature", CONSTRAINED_FEATURES, ids=lambda f: f.name)
def test_the_policy_step_never_moves_risk_the_wrong_way(
    champion: Champion, applicants: pd.DataFrame, feature: Feature
) -> None:
    before = champion.risk(applicants)

    after = champion.risk(stepped(applicants, feature))

    assert _wrong_way(feature, before, after) == 0
    # Not vacuous: the step moved the risk of some applicants (few, far outside the training data).
    assert (after != before).sum() > len(applicants) // 100


@pytest.mark.parametrize("feature", CONSTRAINED_FEATURES, ids=lambda f: f.name)
def test_moves_of_any_size_never_move_risk_the_wrong_way(
    champion: Champion, applicants: pd.DataFrame, feature: Feature
) -> None:
    before = champion.risk(applicants)

    after = champion.risk(_moved_at_random(applicants, feature, seed=len(feature.name)))

    assert _wrong_way(feature, before, after) == 0


def test_no_elderly_applicant_is_scored_worse_than_at_61(
    champion: Champion, applicants: pd.DataFrame
) -> None:
    elderly_ages = np.random.default_rng(5).integers(ELDERLY_AGE, 101, size=len(applicants))

    at_61 = champion.score(applicants.assign(age=ELDERLY_AGE - 1))
    elderly = champion.score(applicants.assign(age=elderly_ages))

    assert (elderly["risk_score"].to_numpy() <= at_61["risk_score"].to_numpy()).all()
    assert not [r for reasons in elderly["reasons"] for r in reasons if r["code"] == "AGE"]


def test_age_moves_nothing_at_all(champion: Champion, applicants: pd.DataFrame) -> None:
    """The stronger property of this model: age is not scored, so no age is valued below another."""
    scored = [champion.score(applicants.assign(age=age)) for age in (18, 35, 61, ELDERLY_AGE, 100)]

    for other in scored[1:]:
        np.testing.assert_array_equal(other["risk_score"].to_numpy(), scored[0]["risk_score"].to_numpy())
        assert other["reasons"].tolist() == scored[0]["reasons"].tolist()


def _codes_about(feature: Feature) -> set[str]:
    """The reason codes that speak of ``feature``: its own, and those of the ratios it enters."""
    assert feature.reason is not None
    return {feature.reason.code} | {r.reason.code for r in RATIOS if feature.name in r.inputs}


def _safe_move(applicants: pd.DataFrame, feature: Feature) -> pd.DataFrame:
    """One step in the direction that may only lower the risk (the policy step, or its reverse)."""
    if feature.direction == "down":
        return stepped(applicants, feature)
    assert feature.step is not None
    values = applicants[feature.name].to_numpy(float)
    lowered = np.clip(values / feature.step.factor - feature.step.offset, feature.minimum, feature.maximum)
    return applicants.assign(**{feature.name: lowered.astype(applicants[feature.name].to_numpy().dtype)})


@pytest.mark.parametrize("feature", CONSTRAINED_FEATURES, ids=lambda f: f.name)
def test_a_reason_names_a_field_whose_safe_move_would_not_raise_the_risk(
    champion: Champion, applicants: pd.DataFrame, feature: Feature
) -> None:
    scored = champion.score(applicants)
    codes = _codes_about(feature)
    cited = np.array([bool(codes & {r["code"] for r in reasons}) for reasons in scored["reasons"]])
    rows = applicants[cited]

    after = champion.risk(_safe_move(rows, feature))

    assert len(rows) > 0, f"no applicant was given a reason about {feature.name}"
    assert (after <= scored["risk_score"].to_numpy()[cited]).all()


def test_the_run_logged_a_passed_policy_gate_and_its_table(
    sqlite_store: TrackingStore, champion: Champion
) -> None:
    client = MlflowClient(tracking_uri=sqlite_store.tracking_uri)
    run = client.get_run(champion.run_id)

    policy = {k: v for k, v in run.data.metrics.items() if k.startswith("policy_")}
    card = Path(client.download_artifacts(champion.run_id, "model_card.md", str(sqlite_store.root)))

    assert run.data.tags["policy_gate"] == "passed"
    assert policy == {
        **{f"policy_wrong_way_{f.name}": 0.0 for f in CONSTRAINED_FEATURES},
        "policy_elderly_worse_than_61": 0.0,
    }
    for metric in ("roc_auc", "ks", "brier"):
        assert f"unconstrained_test_{metric}" in run.data.metrics
    text = card.read_text()
    assert "## Credit policy (test split)" in text
    assert "| `income` | never rises | ×1.5 |" in text
    assert "| `age` (62 and over) | never higher than at 61 |" in text
    assert "`AGE` is not a reason code" in text
    policy_files = {Path(a.path).name for a in client.list_artifacts(champion.run_id, "policy")}
    assert policy_files == {"policy_gate.md"}


def test_a_model_that_breaks_the_policy_is_never_made_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry's rule, on a real store: a gate problem keeps even a first version off champion."""
    splits = split(generate_applicants(3000, seed=3), seed=3)
    twin = fit(build_pipeline(10, 8, 5, seed=3, constrained=False), splits.train)
    store = TrackingStore(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)
    create_experiment(store, tmp_path / "artifacts")
    experiment = MlflowClient(tracking_uri=store.tracking_uri).get_experiment_by_name(store.experiment)
    assert experiment is not None
    # NB: mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI in the environment, which every later
    # `mlflow run` of this session inherits: monkeypatch records the variables first and restores
    # them, and the experiment is named per run (set_experiment would set MLFLOW_EXPERIMENT_ID).
    previous = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.tracking_uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(store.tracking_uri)
    try:
        with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
            info = log_pyfunc(twin, 0.5, run.info.run_id, {})
            problem = policy_report(risk_of(twin), Splits.features(splits.test)).problem()
            assert problem is not None
            decision = register(
                info.model_uri,
                "credit-score",
                0.99,
                Splits.features(splits.test),
                splits.test[TARGET].to_numpy(),
                (problem,),
            )
    finally:
        mlflow.set_tracking_uri(previous)

    assert decision.alias == "challenger"
    assert decision.reason.startswith("credit policy violated on the test split: income (")
    assert decision.reason.endswith("; never promoted automatically")
