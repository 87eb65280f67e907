"""What the peers share: their settings' environment names, and how they load the pipeline.

The benchmark downloads the champion's skops artifact from the registry, checks it with the
pyfunc's own trust rules (``model_code.pyfunc.load_pipeline``) and hands the peers the list of
types it approved; skops refuses to load anything outside that list. Imported in the peers'
environments (skops, no mlflow) and in the project's.
"""

from __future__ import annotations

import json
import os
from typing import Any

PIPELINE_ENV = "BENCH_PIPELINE"
TRUSTED_ENV = "BENCH_PIPELINE_TRUSTED_TYPES"
BATCHING_ENV = "BENCH_BENTO_BATCHING"  # "1": the BentoML peer's API uses adaptive batching
BENTO_MAX_BATCH_ROWS = 100  # BentoML's default max_batch_size, spelled out: the bench relies on it
MODEL_DIR_ENV = "BENCH_MODEL_DIR"  # the one-hop server's downloaded model folder


def load_vetted_pipeline() -> Any:
    """The pipeline at ``$BENCH_PIPELINE``, trusting the types listed in ``$BENCH_PIPELINE_TRUSTED_TYPES``."""
    import skops.io

    trusted = json.loads(os.environ[TRUSTED_ENV])
    return skops.io.load(os.environ[PIPELINE_ENV], trusted=trusted)


def rejection_probabilities(pipeline: Any, frame: Any) -> list[float]:
    """P(default) per row, the pyfunc's ``rejection_probability`` (class 1 is default)."""
    probabilities: list[float] = pipeline.predict_proba(frame)[:, 1].astype("float64").tolist()
    return probabilities
