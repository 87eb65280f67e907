"""Stage 3b of training: the credit-policy gate, beside the fairness gate.

Every applicant of the test split is moved one step up in each field that has a direction (the
schema's ``Step``, within the field's bounds) and scored again; an applicant whose probability of
default moves against the field's direction is a wrong-way move. Every applicant is also placed at
61 and at each elderly age (62 to the schema's maximum age); one scored worse at any elderly age
than at 61 breaks Regulation B's rule that an elderly applicant's age is never held against them.
Comparisons are exact: the constrained forest makes every count zero by construction, and a model
with any violation is never made champion automatically (``training.register``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model_code.schema import CONSTRAINED_FEATURES, ELDERLY_AGE, FEATURES_BY_NAME, Direction, Feature

Scorer = Callable[[pd.DataFrame], np.ndarray]

AGE = FEATURES_BY_NAME["age"]
_MOVES: dict[Direction, str] = {"up": "never falls", "down": "never rises", "none": "either way"}


@dataclass(frozen=True)
class FieldCheck:
    """One constrained field: its step, the applicants it moved, and those whose risk went the wrong way."""

    field: str
    direction: Direction
    step: str
    moved: int
    wrong_way: int


@dataclass(frozen=True)
class PolicyReport:
    """The gate's table: wrong-way moves per constrained field, elderly applicants worse than at 61."""

    fields: tuple[FieldCheck, ...]
    elderly_ages: tuple[int, int]
    elderly_checked: int
    elderly_worse_than_61: int

    @property
    def violations(self) -> int:
        return sum(check.wrong_way for check in self.fields) + self.elderly_worse_than_61

    def problem(self) -> str | None:
        """Why the model may not be promoted automatically, or None when it passes."""
        if not self.violations:
            return None
        broken = [f"{check.field} ({check.wrong_way})" for check in self.fields if check.wrong_way]
        if self.elderly_worse_than_61:
            broken.append(f"elderly scored worse than at 61 ({self.elderly_worse_than_61})")
        return "credit policy violated on the test split: " + ", ".join(broken)

    def metrics(self) -> dict[str, float]:
        metrics = {f"policy_wrong_way_{check.field}": float(check.wrong_way) for check in self.fields}
        metrics["policy_elderly_worse_than_61"] = float(self.elderly_worse_than_61)
        return metrics

    def markdown(self, unconstrained: PolicyReport | None = None) -> str:
        """The table, with the unconstrained twin's counts beside the model's when given."""
        twin = " | unconstrained twin |" if unconstrained else " |"
        lines = [
            f"| field | risk as the value rises | step | applicants moved | wrong-way moves{twin}",
            "| --- | --- | --- | ---: | ---: |" + (" ---: |" if unconstrained else ""),
        ]
        others = {c.field: c for c in unconstrained.fields} if unconstrained else {}
        for check in self.fields:
            extra = f" {others[check.field].wrong_way:,} |" if unconstrained else ""
            lines.append(
                f"| `{check.field}` | {_MOVES[check.direction]} | {check.step} | {check.moved:,} | "
                f"{check.wrong_way:,} |{extra}"
            )
        low, high = self.elderly_ages
        extra = f" {unconstrained.elderly_worse_than_61:,} |" if unconstrained else ""
        lines.append(
            f"| `age` ({low} and over) | never higher than at {low - 1} | each age {low}–{high} | "
            f"{self.elderly_checked:,} | {self.elderly_worse_than_61:,} |{extra}"
        )
        return "\n".join(lines)


def stepped(applicants: pd.DataFrame, feature: Feature) -> pd.DataFrame:
    """``applicants`` with ``feature`` moved one step up, clipped to its bounds (integers stay integers)."""
    assert feature.step is not None
    values = applicants[feature.name].to_numpy()
    moved = np.clip(values * feature.step.factor + feature.step.offset, feature.minimum, feature.maximum)
    return applicants.assign(**{feature.name: moved.astype(values.dtype)})


def policy_report(score: Scorer, applicants: pd.DataFrame) -> PolicyReport:
    """Count the policy's violations by ``score`` (probabilities of default) on ``applicants``."""
    before = score(applicants)
    checks = []
    for feature in CONSTRAINED_FEATURES:
        after_frame = stepped(applicants, feature)
        moved = after_frame[feature.name].to_numpy() != applicants[feature.name].to_numpy()
        after = score(after_frame)
        wrong = after < before if feature.direction == "up" else after > before
        assert feature.step is not None
        checks.append(
            FieldCheck(
                feature.name, feature.direction, feature.step.describe(), int(moved.sum()), int(wrong.sum())
            )
        )
    return PolicyReport(tuple(checks), *_elderly_check(score, applicants))


def _elderly_check(score: Scorer, applicants: pd.DataFrame) -> tuple[tuple[int, int], int, int]:
    """(elderly ages tried, applicants checked, applicants scored worse at some elderly age than at 61)."""
    assert AGE.maximum is not None
    ages = range(ELDERLY_AGE, int(AGE.maximum) + 1)
    at_61 = score(applicants.assign(age=ELDERLY_AGE - 1))
    # NB: every age in one call: the per-call overhead of scoring dominates 40 small calls.
    everyone = pd.concat([applicants.assign(age=age) for age in ages], ignore_index=True)
    elderly = score(everyone).reshape(len(ages), len(applicants))
    worse = (elderly > at_61).any(axis=0)
    return (ELDERLY_AGE, int(AGE.maximum)), len(applicants), int(worse.sum())
