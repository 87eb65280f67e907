"""The BentoML peer: the champion's scikit-learn pipeline behind one BentoML 1.4 worker.

Started by ``make bench`` as ``bentoml serve scripts.bench_peers.bento_service:CreditScore`` in
its own environment; ``BENCH_BENTO_BATCHING=1`` turns on BentoML's adaptive batching (with its
default batch size and latency budget). POST /predict takes ``{"applications": [row, ...]}`` and
answers the rows' probabilities of default.
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import pandas as pd

from scripts.bench_peers.common import (
    BATCHING_ENV,
    BENTO_MAX_BATCH_ROWS,
    load_vetted_pipeline,
    rejection_probabilities,
)

# NB: read at import: BentoML fixes an API's batching when the class is decorated.
BATCHING = os.environ.get(BATCHING_ENV) == "1"


@bentoml.service(workers=1)
class CreditScore:
    """One worker; the pipeline loaded once, as BentoML's scikit-learn examples do."""

    def __init__(self) -> None:
        self.pipeline = load_vetted_pipeline()

    # NB: max_latency_ms stays BentoML's default (60 s): the bench measures it as it ships.
    @bentoml.api(route="/predict", batchable=BATCHING, max_batch_size=BENTO_MAX_BATCH_ROWS)
    def predict(self, applications: list[dict[str, Any]]) -> list[float]:
        return rejection_probabilities(self.pipeline, pd.DataFrame(applications))
