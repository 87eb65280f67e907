"""The facade tests' recorded training outputs are what training writes now.

The facade tests run where only the facade's dependencies are installed, so they read a drift
reference and a pool of generated applicants recorded in ``tests/facade/data`` instead of calling
``training``. This test rebuilds both with the real generator and ``training.reference`` and
fails when they drift; ``python -m tests.model.test_facade_recordings`` writes them again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.facade.facade_fakes import APPLICANTS_FILE, REFERENCE_FILE, risk
from training.data import TARGET, generate_applicants
from training.reference import drift_reference

# NB: the reference is built from one draw of the generator and the facade fakes' risk; the traffic
# pool from another seed, so that "like" traffic is the same population, not the same rows.
REFERENCE_ROWS, REFERENCE_SEED = 5000, 11
POOL_ROWS, POOL_SEED = 2000, 2024


def recordings() -> dict[Path, str]:
    """What the recorded files must hold, as training writes them now."""
    frame = generate_applicants(REFERENCE_ROWS, seed=REFERENCE_SEED).drop(columns=[TARGET])
    risks = np.array([risk(int(marks)) for marks in frame["derogatory_marks"]])
    pool = generate_applicants(POOL_ROWS, seed=POOL_SEED).drop(columns=[TARGET])
    return {
        REFERENCE_FILE: json.dumps(drift_reference(frame, risks), indent=1) + "\n",
        APPLICANTS_FILE: pool.to_json(orient="split", index=False) + "\n",
    }


def test_recorded_reference_and_applicants_are_what_training_writes_now() -> None:
    for path, expected in recordings().items():
        assert path.read_text() == expected, f"{path} is stale: python -m tests.model.test_facade_recordings"


if __name__ == "__main__":
    for path, text in recordings().items():
        path.write_text(text)
