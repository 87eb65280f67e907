"""The MLServer peer's runtime: MLServer 1.7's scikit-learn runtime loads joblib files only, so
this one loads the champion's skops pipeline and answers ``predict_proba``'s class-1 column.

The benchmark writes the model folder (``settings.json`` and ``model-settings.json`` naming
``scripts.bench_peers.mlserver_runtime.SkopsPipelineRuntime``) and starts ``mlserver start`` in
its own environment. Requests use the V2 protocol with a pandas content type, one input a column.
"""

from __future__ import annotations

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, PandasCodec
from mlserver.types import InferenceRequest, InferenceResponse

from scripts.bench_peers.common import load_vetted_pipeline, rejection_probabilities

OUTPUT = "rejection_probability"


class SkopsPipelineRuntime(MLModel):
    """Like mlserver-sklearn's runtime (decode, predict in the event loop, encode), but for skops."""

    async def load(self) -> bool:
        self._pipeline = load_vetted_pipeline()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        frame = self.decode_request(payload, default_codec=PandasCodec)
        risk = np.asarray(rejection_probabilities(self._pipeline, frame))
        return InferenceResponse(model_name=self.name, outputs=[NumpyCodec.encode_output(OUTPUT, risk)])
