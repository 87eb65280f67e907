"""What a training run leaves in MLflow's tracking server and registry, by the names its readers use.

Training writes these; the facade and ``make run`` read them. Stdlib only: the facade image has it
without mlflow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

# NB: MLflow deprecated registry stages in favour of aliases: training moves `champion` where it used
# to promote to Production, and sets `challenger` where it used Staging.
CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
STAGE_TO_ALIAS: Final = {"production": CHAMPION, "staging": CHALLENGER}

# An MLflow run id: 32 lowercase hex digits (a UUID4 without dashes).
RUN_ID_PATTERN: Final = r"[0-9a-f]{32}"
RUN_ID: Final = re.compile(RUN_ID_PATTERN)

# The run parameter (and the pyfunc's model_config key) holding the decision threshold.
THRESHOLD_PARAM: Final = "decision_threshold"
# Metrics of the held-out test split carry this prefix.
TEST_METRIC_PREFIX: Final = "test_"
# The model card training logs at the run's artifact root (and inside the model).
MODEL_CARD_ARTIFACT: Final = "model_card.md"


def version_of_run(versions: Iterable[str]) -> str | None:
    """The registered version that names a run's model: the highest of those registered from it.

    NB: a run registered twice (v2 and v3 from one run) answers with one run id; the facade reports
    the highest version for it, and the serving supervisor's gate refuses to serve the lower one,
    whose answers would be reported under the other's number.
    """
    numbers = [int(version) for version in versions if version.isdigit()]
    return str(max(numbers)) if numbers else None
