"""Stage 3b of training: approval and error rates by age band, with fairlearn's MetricFrame.

Outcomes are read from the applicant's side: y_true = 1 when the applicant repaid, y_pred = 1 when
the model approves. So the true positive rate is the share of good payers approved, the false
positive rate the share of defaulters approved, and demographic parity compares approval rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

AGE_BANDS = ((18, 25, "18-25"), (26, 40, "26-40"), (41, 60, "41-60"), (61, 200, "61+"))
# NB: a rate over a handful of people is noise: a band enters the gaps only with at least this
# many repaid and this many defaulted applicants in the evaluation rows (all bands are reported).
MIN_OUTCOMES_PER_BAND = 30


def age_band(age: pd.Series) -> pd.Series:
    labels = np.full(len(age), "", dtype=object)
    values = age.to_numpy()
    for low, high, label in AGE_BANDS:
        labels[(values >= low) & (values <= high)] = label
    return pd.Series(labels, index=age.index, name="age_band")


@dataclass
class FairnessReport:
    """The per-band table and the two summary gaps."""

    table: pd.DataFrame
    demographic_parity_difference: float
    equalized_odds_difference: float

    def gap(self) -> float:
        return max(self.demographic_parity_difference, self.equalized_odds_difference)

    def markdown(self) -> str:
        header = (
            "| age band | applicants | approval rate | true positive rate | false positive rate | in gaps |"
        )
        lines = [header, "| --- | ---: | ---: | ---: | ---: | --- |"]
        for band, row in self.table.iterrows():
            lines.append(
                f"| {band} | {int(row['count'])} | {row['approval_rate']:.3f} | "
                f"{row['true_positive_rate']:.3f} | {row['false_positive_rate']:.3f} | "
                f"{'yes' if row['in_gaps'] else 'no (too few outcomes)'} |"
            )
        return "\n".join(lines)


def fairness_report(
    ages: pd.Series, defaulted: np.ndarray, risk: np.ndarray, threshold: float
) -> FairnessReport:
    repaid = 1 - np.asarray(defaulted)
    approved = (risk < threshold).astype(int)
    bands = age_band(ages)
    frame = MetricFrame(
        metrics={
            "count": count,
            "approval_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=repaid,
        y_pred=approved,
        sensitive_features=bands,
    )
    order = [label for _, _, label in AGE_BANDS if label in set(bands)]
    outcomes = pd.crosstab(bands, repaid).reindex(columns=[0, 1], fill_value=0)
    fewest = outcomes.min(axis=1)
    eligible = [band for band in order if fewest[band] >= MIN_OUTCOMES_PER_BAND]
    table = frame.by_group.loc[order].assign(in_gaps=[band in eligible for band in order])
    if len(eligible) < 2:
        return FairnessReport(table, 0.0, 0.0)
    rows = bands.isin(eligible).to_numpy()
    return FairnessReport(
        table=table,
        demographic_parity_difference=float(
            demographic_parity_difference(repaid[rows], approved[rows], sensitive_features=bands[rows])
        ),
        equalized_odds_difference=float(
            equalized_odds_difference(repaid[rows], approved[rows], sensitive_features=bands[rows])
        ),
    )
