"""Arrow IPC and Parquet request bodies, for large batches: read, and each column's type checked against
the model's features (the JSON path checks values one by one; a binary body is typed already)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from app.serve.errors import RequestError

if TYPE_CHECKING:
    from app.serve.schema import FeatureSchema

ARROW_TYPES = ("application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")


def read_binary(body: bytes, media: str) -> pa.Table:
    try:
        if media in PARQUET_TYPES:
            import pyarrow.parquet as pq

            return pq.read_table(io.BytesIO(body))
        import pyarrow.ipc as ipc

        reader = ipc.open_stream if media.endswith("stream") else ipc.open_file
        return reader(pa.BufferReader(body)).read_all()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise RequestError(400, f"unreadable {media} body: {exc}") from None


def check_binary(table: pa.Table, schema: FeatureSchema) -> pa.Table:
    problems = []
    for name in schema.features:
        column, kind = table.column(name), schema.kind(name)
        t = column.type
        if kind == "number" and not (
            pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)
        ):
            problems.append({"field": name, "message": f"expected a numeric column, got {t}"})
        elif kind == "number" and pa.types.is_floating(t) and column.null_count < len(column):
            inf = pc.is_inf(column)
            if pc.any(inf).as_py():
                row = pc.index(inf, True).as_py()
                problems.append({"field": name, "row": row, "message": "not a finite number"})
        elif kind == "datetime" and not (
            pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_string(t) or pa.types.is_null(t)
        ):
            problems.append({"field": name, "message": f"expected a date/time column, got {t}"})
        elif kind == "category" and (pa.types.is_nested(t) or pa.types.is_binary(t)):
            problems.append({"field": name, "message": f"expected a category column, got {t}"})
    if problems:
        raise RequestError(422, f"{len(problems)} column(s) of the wrong type", problems)
    return table
