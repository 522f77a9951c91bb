"""Batch prediction: a prediction table (``prediction`` + ``proba_<class>``) for Arrow rows, and whole
files predicted to Parquet in input order."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from app.data.errors import DataError
from app.train.load import load_model

if TYPE_CHECKING:
    from app.config import S3Config


def prediction_table(model: Any, table: pa.Table) -> pa.Table:
    """``prediction`` and, for classifiers, ``proba_<class>`` columns for the rows of ``table``."""
    scores = np.asarray(model.predict_scores(table))
    if model.task == "regression":
        return pa.table({"prediction": scores.astype(np.float64)})
    labels = model.preprocessor.decode_labels(scores.argmax(axis=1))
    cols = {"prediction": pa.array(labels.tolist())}
    for j, cls in enumerate(model.classes):
        cols[f"proba_{cls}"] = pa.array(scores[:, j].astype(np.float64))
    return pa.table(cols)


def predict_to_parquet(
    model_dir: str | Path,
    data: str,
    out: str | Path,
    *,
    batch_rows: int = 65_536,
    tracking_uri: str | None = None,
    s3: S3Config | None = None,
) -> int:
    """Predict every row of ``data`` (file, directory, glob, ``s3://``) into one Parquet file, in input
    order. ``model_dir`` is anything ``load_model`` reads (a ``models:/`` URI on ``tracking_uri``).

    Reads and writes batch by batch, so memory stays flat however large the input.

    Long on purpose: the checks that name a missing or unreadable input come before the one streaming
    loop, and the staged output file is replaced only when every batch was written.
    """
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    from app.data.filesystem import S3Options, filesystem_for

    model = load_model(model_dir, tracking_uri=tracking_uri)
    fs, path = filesystem_for(data, S3Options.from_config(s3))
    if fs.get_file_info(path).type == pafs.FileType.NotFound and not any(c in path for c in "*?["):
        raise DataError("no such file or directory", path=str(data))
    try:
        dataset = pads.dataset(
            path,
            filesystem=fs,
            format="csv" if str(data).endswith(".csv") else "parquet",
            partitioning="hive",
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"not a readable data file: {exc}", path=str(data)) from None
    missing = [f for f in model.features if f not in dataset.schema.names]
    if missing:
        raise DataError(f"columns the model needs are missing: {missing}", path=str(data))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, writer, done = 0, None, False
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        for batch in dataset.to_batches(columns=model.features, batch_size=batch_rows):
            if batch.num_rows == 0:
                continue
            preds = prediction_table(model, pa.Table.from_batches([batch]))
            writer = writer or pq.ParquetWriter(tmp, preds.schema)
            writer.write_table(preds)
            rows += batch.num_rows
        done = True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise DataError(f"cannot predict on these rows: {exc}", path=str(data)) from None
    except DataError as exc:
        if exc.path is not None:
            raise
        raise DataError(exc.reason, path=str(data), column=exc.column) from None
    finally:
        if writer is not None:
            writer.close()
        if not done:  # a failed prediction leaves no partial file behind
            tmp.unlink(missing_ok=True)
    if writer is None:
        raise DataError("no rows to predict", path=str(data))
    tmp.replace(out)
    return rows
