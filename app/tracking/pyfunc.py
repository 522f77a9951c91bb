"""The preprocessor + model pipeline as an MLflow ``pyfunc``: raw feature columns in, labels (or
probabilities) out. It loads the native model files of each member through ``app.train.model.load_model``;
an ensemble averages its members' scores with the logged weights.
"""

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

METHODS = ("predict", "predict_proba", "predict_scores")


class PipelineModel(mlflow.pyfunc.PythonModel):
    """Loaded by MLflow from ``_pyfunc_entry.py`` (models from code): nothing about it is pickled.

    ``predict(frame)`` gives labels for a classifier and values for a regressor; pass
    ``params={"method": "predict_proba"}`` for class probabilities in ``classes`` order.
    """

    def load_context(self, context: Any) -> None:
        from app.train.load import load_model

        config = context.model_config or {}
        count = int(config.get("members", 1))
        self.members = [load_model(context.artifacts[f"member_{i}"]) for i in range(count)]
        weights = np.asarray(config.get("weights") or [1.0] * count, dtype=np.float64)
        self.weights = weights / weights.sum()

    # MLflow reads predict's type hints at class creation (no `from __future__ import annotations` here):
    # a DataFrame hint means "no schema from hints", the logged signature does the validation.
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        method = (params or {}).get("method", "predict")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        scores = sum(
            w * m.predict_scores(model_input) for w, m in zip(self.weights, self.members, strict=True)
        )
        first = self.members[0]
        if method != "predict":
            if method == "predict_proba" and first.task == "regression":
                raise ValueError("predict_proba is for classifiers; this model is a regressor")
            return scores
        if first.task == "regression":
            return scores
        return first.preprocessor.decode_labels(np.argmax(scores, axis=1))
