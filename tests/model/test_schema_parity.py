"""The applicant schema is the single source of truth: every derived artifact must match it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import yaml

from model_code.contract import OUTPUT_COLUMNS
from model_code.preprocessing import ENGINEERED_FEATURES, build_preprocessor, ratio_columns
from model_code.pyfunc import signature
from model_code.reasons import REASONS
from model_code.schema import (
    EXAMPLE_APPLICANTS,
    FEATURE_NAMES,
    FEATURES,
    NUMERIC_FEATURES,
    RATIOS,
    SCORED_CATEGORICAL_FEATURES,
    SCORED_NUMERIC_FEATURES,
)
from tests.model.schema_rules import violations
from training.data import TARGET, generate_applicants
from training.main import RUNTIME_PACKAGES, runtime_requirements

ROOT = Path(__file__).resolve().parents[2]


def test_signature_leaves_the_applicants_to_the_models_own_checks() -> None:
    # NB: any MLflow input schema refuses some dtype data scientists have (see signature());
    # the applicant schema travels in the model's `features` metadata instead.
    assert signature().inputs is None


def test_signature_outputs_are_the_documented_columns() -> None:
    assert [c["name"] for c in signature().outputs.to_dict()] == list(OUTPUT_COLUMNS)


def test_generator_emits_exactly_the_schema_fields_and_the_label() -> None:
    frame = generate_applicants(500, seed=1)

    assert list(frame.columns) == [*FEATURE_NAMES, TARGET]
    for name in NUMERIC_FEATURES:
        assert frame[name].dtype.kind in "if", name


def test_preprocessing_uses_the_schema_columns_and_categories() -> None:
    transformer = build_preprocessor()
    columns = {name: cols for name, _, cols in transformer.transformers}
    encoder = {name: est for name, est, _ in transformer.transformers}["categorical"]

    assert list(columns["numeric"]) == [*SCORED_NUMERIC_FEATURES, *ENGINEERED_FEATURES]
    assert list(columns["categorical"]) == list(SCORED_CATEGORICAL_FEATURES)
    assert [tuple(c) for c in encoder.categories] == [
        next(f.categories for f in FEATURES if f.name == name) for name in SCORED_CATEGORICAL_FEATURES
    ]
    # Every field is scored but age, which no column, ratio or reason reads.
    assert set(FEATURE_NAMES) - {*SCORED_NUMERIC_FEATURES, *SCORED_CATEGORICAL_FEATURES} == {"age"}
    assert not [ratio.name for ratio in RATIOS if "age" in ratio.inputs]


def test_readme_examples_are_valid_applicants() -> None:
    for applicant in EXAMPLE_APPLICANTS.values():
        assert violations(applicant) == []


def test_runtime_pins_agree_across_pyproject_conda_and_the_logged_model() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    model_extra = {
        line.split("==")[0].lower(): line for line in pyproject["project"]["optional-dependencies"]["model"]
    }
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    conda_pins = {line.split("==")[0].lower(): line for line in conda["dependencies"][-1]["pip"]}

    assert conda_pins == model_extra
    for requirement in runtime_requirements():
        assert model_extra[requirement.split("==")[0]] == requirement, "installed version differs from pin"
    assert set(RUNTIME_PACKAGES) <= set(model_extra)


def test_readme_request_table_matches_the_schema() -> None:
    """The README's field table is written by hand: hold it to the schema it documents."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Request", 1)[1].split("\n\n", 2)[1]
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    documented = {cells[0].strip().strip("`"): (cells[1].strip(), cells[2].strip()) for cells in rows}

    assert list(documented) == list(FEATURE_NAMES)
    for feature in FEATURES:
        kind, rule = documented[feature.name]
        if feature.kind == "category":
            assert kind == "string"
            assert [c.strip().strip("`") for c in rule.split(",")] == list(feature.categories)
        else:
            assert kind == feature.kind
            assert rule.startswith(f"{feature.minimum:,.0f} to {feature.maximum:,.0f}"), feature.name


def test_every_reason_code_has_one_wording() -> None:
    wording: dict[str, set[str]] = {}
    for reason in [*(f.reason for f in FEATURES if f.reason is not None), *(r.reason for r in RATIOS)]:
        wording.setdefault(reason.code, set()).add(reason.description)

    assert {code: texts for code, texts in wording.items() if len(texts) > 1} == {}
    assert [r.code for r in REASONS] == list(wording)


def test_each_ratio_reads_its_declared_inputs_and_nothing_else() -> None:
    rng = np.random.default_rng(3)
    # NB: above the income floor and past age 18, where every ratio moves with its inputs.
    columns = {name: rng.uniform(2_000, 50_000, size=50) for name in NUMERIC_FEATURES}
    base = ratio_columns(columns)

    for name in NUMERIC_FEATURES:
        changed = ratio_columns({**columns, name: columns[name] * 1.5 + 7})
        for ratio, before, after in zip(RATIOS, base, changed, strict=True):
            moved = not np.array_equal(before, after)
            assert moved == (name in ratio.inputs), (ratio.name, name)
    assert tuple(r.name for r in RATIOS) == ENGINEERED_FEATURES
