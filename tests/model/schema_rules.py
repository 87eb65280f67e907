"""A record checked against the applicant schema field by field, for tests of generated and example data."""

from __future__ import annotations

from collections.abc import Mapping

from model_code.schema import FEATURES, FEATURES_BY_NAME


def violations(record: Mapping[str, object]) -> list[tuple[str, str]]:
    """Every (field, rule) that ``record`` breaks: missing, unknown or disallowed values."""
    problems = [(f.name, "is required") for f in FEATURES if f.name not in record]
    problems += [(name, "is not an applicant field") for name in record if name not in FEATURES_BY_NAME]
    for name, value in record.items():
        feature = FEATURES_BY_NAME.get(name)
        if feature is not None and (rule := feature.violation(value)) is not None:
            problems.append((name, rule))
    return problems
