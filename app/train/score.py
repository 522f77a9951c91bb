"""Batch scoring of a Ray Dataset: ``map_batches`` over a pool of actors that load the model once each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import ray.data

    from app.train.model import Predictor


class ScoringActor:
    """Holds one ``Predictor`` per actor and appends predictions to each batch.

    ``loader(model_dir)`` builds the predictor (``load_model`` unless a test hands another one).
    """

    def __init__(
        self,
        model_dir: str,
        *,
        proba: bool = False,
        output_column: str = "prediction",
        device: str | None = None,
        loader: Callable[[str], Predictor] | None = None,
    ) -> None:
        if loader is None:
            from app.train.load import load_model as loader
        self.predictor = loader(model_dir)
        if device:
            self.predictor.use_device(device)
        self.proba, self.output_column = proba, output_column

    def __call__(self, batch: pa.Table) -> pa.Table:
        p = self.predictor
        scores = p.predict_scores(batch)
        if p.task == "regression":
            return batch.append_column(self.output_column, pa.array(scores.astype(np.float64)))
        labels = p.preprocessor.decode_labels(np.argmax(scores, axis=1))
        out = batch.append_column(self.output_column, pa.array(labels.tolist()))
        if self.proba:
            for j, cls in enumerate(p.classes or []):
                out = out.append_column(f"proba_{cls}", pa.array(scores[:, j].astype(np.float64)))
        return out


def score_dataset(
    ds: ray.data.Dataset,
    model_dir: str | Path,
    *,
    concurrency: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0,
    batch_size: int | None = 4096,
    proba: bool = False,
    output_column: str = "prediction",
) -> ray.data.Dataset:
    """Lazily add ``prediction`` (and ``proba_<class>`` columns when ``proba``) to every row of ``ds``.

    The model directory must be readable from every node (shared disk); each actor loads it once.
    ``num_gpus > 0`` gives each actor a GPU and predicts on ``cuda``.

    Example:
        >>> scored = score_dataset(ray.data.read_parquet("new/"), "runs/m1", concurrency=2)  # doctest: +SKIP
        >>> scored.write_parquet("scored/")  # doctest: +SKIP
    """
    return ds.map_batches(
        ScoringActor,
        fn_constructor_args=(str(Path(model_dir).resolve()),),
        fn_constructor_kwargs={
            "proba": proba,
            "output_column": output_column,
            "device": "cuda" if num_gpus else None,
        },
        batch_format="pyarrow",
        batch_size=batch_size,
        concurrency=concurrency,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )
