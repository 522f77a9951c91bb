"""Request bodies into validated Arrow rows: MLflow's scoring protocol (``dataframe_split``,
``dataframe_records``, ``inputs``/``instances``) as JSON, or Arrow IPC / Parquet for large batches.

Every problem is named (field, row) and answered with a 4xx before anything reaches the model; unknown
categorical levels are not problems (they take the unknown bucket, as in training).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from app.serve.binary import ARROW_TYPES, PARQUET_TYPES, check_binary, read_binary
from app.serve.errors import MAX_LISTED, RequestError
from app.serve.rows import Rows

JSON_TYPES = ("application/json",)
DATA_KEYS = ("dataframe_split", "dataframe_records", "inputs", "instances")


@dataclass(frozen=True)
class FeatureSchema:
    """The raw input columns a model takes and the kind of each: number, category or datetime."""

    features: tuple[str, ...]
    categorical: frozenset[str] = field(default_factory=frozenset)
    datetime: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_preprocessor(cls, pre: Any) -> FeatureSchema:
        return cls(tuple(pre.features), frozenset(pre.categories), frozenset(pre.datetime))

    def kind(self, name: str) -> str:
        if name in self.categorical:
            return "category"
        return "datetime" if name in self.datetime else "number"

    def describe(self) -> list[dict[str, str]]:
        return [{"name": f, "type": self.kind(f)} for f in self.features]


def parse_rows(body: bytes, content_type: str | None, schema: FeatureSchema, *, max_rows: int) -> Rows:
    """The request's rows, exactly ``schema.features``, or a ``RequestError``."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media in JSON_TYPES:
        layout = _JsonRows.read(_json_doc(body), schema)
        _check_shape(layout.num_rows, set(layout.names), schema, max_rows)
        matrix = _number_matrix(layout, body, schema)
        if matrix is not None:
            return Rows(schema.features, matrix=matrix)
        return Rows(schema.features, table=_typed_table(layout.columns(), schema))
    if media in ARROW_TYPES or media in PARQUET_TYPES:
        table = read_binary(body, media)
        _check_shape(table.num_rows, set(table.column_names), schema, max_rows)
        return Rows(schema.features, table=check_binary(table.select(list(schema.features)), schema))
    raise RequestError(
        415,
        f"unsupported content type {media!r}: send application/json (MLflow scoring protocol), "
        f"{ARROW_TYPES[0]} or {PARQUET_TYPES[0]}",
    )


def _json_doc(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # MLflow's clients may send NaN/Infinity tokens, which strict JSON parsers refuse
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RequestError(400, f"the body must be a JSON object with one of {', '.join(DATA_KEYS)}")
    return doc


# Rows up to which a request's numbers are checked and converted by numpy: for a few rows numpy is many
# times faster than Arrow's type inference and cast; for a thousand rows Arrow is faster.
FEW_ROWS = 64
EXACT_INT = 2**53  # beyond it an integer is not exact as a float64 (Arrow refuses it; so does the service)
_PLAIN_NUMBERS = frozenset({int, float, type(None)})
_NUMBER_TYPES = frozenset(t.id for t in (pa.float64(), pa.int64(), pa.null()))


def _number_matrix(layout: _JsonRows, body: bytes, schema: FeatureSchema) -> np.ndarray | None:
    """The rows as one float64 matrix when the model's features are all numbers and every value is a
    finite number or null; None otherwise, and the column-by-column conversion that names each problem
    takes over (this one only has to be right when it answers)."""
    if schema.categorical or schema.datetime:
        return None
    names = list(schema.features)
    try:
        if layout.by_column is not None:
            rows = list(zip(*[layout.by_column[name] for name in names], strict=True))
        elif layout.names != names:
            order = [layout.names.index(name) for name in names]
            rows = [[row[j] for j in order] for row in layout.rows]
        else:
            rows = layout.rows
        n, k = len(rows), len(names)
        if n <= FEW_ROWS:
            # numpy would take True and "1.5" as numbers: the values' types are checked first.
            types = set(map(type, chain.from_iterable(rows)))
            if not types <= _PLAIN_NUMBERS:
                return None
            matrix = np.array(rows, dtype=np.float64)
            if int in types and np.nanmax(np.abs(matrix), initial=0) >= EXACT_INT:
                return None
        else:
            # JSON writes a bool only as true/false, and Arrow's inference takes one after a float as a
            # number: a body with either word anywhere goes the column-by-column way. Inference refuses
            # text and lists among numbers, and the cast checks that large integers stay exact.
            if b"true" in body or b"false" in body:
                return None
            inferred = pa.array(rows)
            if inferred.type.value_type.id not in _NUMBER_TYPES:
                return None
            fixed = inferred.cast(pa.list_(pa.float64(), k))
            if fixed.null_count:
                return None
            matrix = fixed.values.to_numpy(zero_copy_only=False).reshape(n, k)
    except (TypeError, ValueError, OverflowError, pa.ArrowException):
        return None
    if matrix.shape != (n, k) or np.isinf(matrix).any():
        return None
    return matrix


def _data_key(doc: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The body's one data key (None when there is not exactly one, or another key beside it) and its
    unknown keys."""
    unknown = [k for k in doc if k not in (*DATA_KEYS, "params")]
    given = [k for k in DATA_KEYS if k in doc]
    return (given[0] if len(given) == 1 and not unknown else None), unknown


def _layout(key: str, data: Any) -> str | None:
    """How ``data`` lays its rows out: split, records, columns (an object of lists) or rows (lists of
    values in the model's feature order); None for anything else."""
    if key == "dataframe_split":
        return "split"
    if key == "dataframe_records" or (isinstance(data, list) and data and isinstance(data[0], dict)):
        return "records"
    if isinstance(data, dict):
        return "columns"
    return "rows" if isinstance(data, list) else None


@dataclass
class _JsonRows:
    """A JSON body's rows, read once from whichever of MLflow's layouts it uses, its shape checked: by row
    (``rows``, values in the order of ``names``: split, records, lists of rows) or by column
    (``by_column``: an object of lists)."""

    names: list[str]
    rows: list[list] = field(default_factory=list)
    by_column: dict[str, list] | None = None

    @property
    def num_rows(self) -> int:
        if self.by_column is not None:
            return len(next(iter(self.by_column.values()), []))
        return len(self.rows)

    def columns(self) -> dict[str, list]:
        if self.by_column is not None:
            return self.by_column
        return {name: [row[j] for row in self.rows] for j, name in enumerate(self.names)}

    @classmethod
    def read(cls, doc: dict[str, Any], schema: FeatureSchema) -> _JsonRows:
        key, unknown = _data_key(doc)
        if key is None:
            problems = [{"field": k, "message": "unknown key"} for k in unknown]
            raise RequestError(400, f"the body needs exactly one of {', '.join(DATA_KEYS)}", problems)
        data = doc[key]
        layout = _layout(key, data)
        if layout == "split":
            if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
                raise RequestError(400, f"{key}: expected an object with 'columns' and 'data'")
            names = [str(name) for name in data["columns"]]
            if len(set(names)) != len(names):
                raise RequestError(422, f"{key}.columns: a column name is repeated")
            return cls(names, _rows(data.get("data"), len(names), f"{key}.data"))
        if layout == "rows":
            return cls(list(schema.features), _rows(data, len(schema.features), f"{key}.data"))
        if layout == "records":
            return cls(*_records(data, key))
        if layout == "columns":
            return cls(list(data), by_column=_by_column(data, key))
        raise RequestError(400, f"{key}: expected a list of rows or an object of columns")


def _rows(rows: Any, width: int, where: str) -> list[list]:
    if not isinstance(rows, list):
        raise RequestError(400, f"{where}: expected a list of rows")
    if all(type(row) is list for row in rows) and {len(row) for row in rows} <= {width}:
        return rows  # the common case, checked in two passes; the problems are listed only when there are any
    problems = [
        {"field": where, "row": i, "message": f"expected a list of {width} values"}
        for i, row in enumerate(rows)
        if not isinstance(row, list) or len(row) != width
    ]
    if problems:
        raise RequestError(422, f"{len(problems)} row(s) do not have {width} values", problems)
    return rows


def _records(records: Any, key: str) -> tuple[list[str], list[list]]:
    if not isinstance(records, list):
        raise RequestError(400, f"{key}: expected a list of objects")
    if records and isinstance(records[0], dict):
        names = list(records[0])
        with contextlib.suppress(KeyError, TypeError):  # a record unlike the first: the checks below
            rows = [[r[name] for name in names] for r in records if len(r) == len(names)]
            if len(rows) == len(records):
                return names, rows
    bad = [{"field": key, "row": i, "message": "expected an object"} for i, r in enumerate(records)]
    bad = [p for p, r in zip(bad, records, strict=True) if not isinstance(r, dict)]
    if bad:
        raise RequestError(422, f"{len(bad)} record(s) are not objects", bad)
    names = list(dict.fromkeys(k for r in records for k in r))
    # A key left out of one record is a missing field, not a missing value (send null for that).
    gaps = [
        {"field": n, "row": i, "message": "missing field"}
        for i, r in enumerate(records)
        for n in names
        if n not in r
    ]
    if gaps:
        first = gaps[0]
        raise RequestError(
            422, f"{len(gaps)} missing field(s); first: {first['field']} row {first['row']}", gaps
        )
    return names, [[r[name] for name in names] for r in records]


def _by_column(data: dict, key: str) -> dict[str, list]:
    bad = [name for name, values in data.items() if not isinstance(values, list)]
    if bad:
        problems = [{"field": name, "message": "expected a list of values"} for name in bad]
        raise RequestError(422, f"{key}: columns must be lists", problems)
    lengths = {len(v) for v in data.values()}
    if len(lengths) > 1:
        raise RequestError(422, f"{key}: columns have different lengths {sorted(lengths)}")
    return dict(data)


def _check_shape(n: int, present: set[str], schema: FeatureSchema, max_rows: int) -> None:
    if n > max_rows:
        raise RequestError(413, f"{n} rows in one request; the limit is {max_rows}")
    if n == 0:
        raise RequestError(422, "no rows to predict")
    problems = [
        {"field": name, "message": "missing column"} for name in schema.features if name not in present
    ]
    problems += [
        {"field": name, "message": "unknown column"} for name in sorted(present - set(schema.features))
    ]
    if problems:
        names = ", ".join(f"{p['field']} ({p['message']})" for p in problems[:MAX_LISTED])
        raise RequestError(422, f"columns do not match the model's features: {names}", problems)


def _typed_table(columns: dict[str, list], schema: FeatureSchema) -> pa.Table:
    arrays, problems = _number_block(columns, schema), []
    for name in schema.features:
        if name in arrays:
            continue
        values = columns[name]
        kind = schema.kind(name)
        convert = _NUMBER if kind == "number" else _DATETIME if kind == "datetime" else _CATEGORY
        array, bad = convert(values)
        problems += [{"field": name, "row": i, "message": msg} for i, msg in bad[:MAX_LISTED]]
        arrays[name] = array
    if problems:
        first = problems[0]
        raise RequestError(
            422,
            f"{len(problems)} invalid value(s); first: {first['field']} row {first['row']}: "
            f"{first['message']}",
            problems,
        )
    return pa.table({name: arrays[name] for name in schema.features})


def _number_block(columns: dict[str, list], schema: FeatureSchema) -> dict[str, pa.Array]:
    """Every numeric feature converted in one Arrow call, each column a slice of that one array; empty
    when any value is not a finite number or null (``_numbers`` then names each, column by column).
    Per column, the conversion's fixed costs were most of a one-row request's parsing."""
    names = [n for n in schema.features if n not in schema.categorical and n not in schema.datetime]
    if not names:
        return {}
    flat = [v for name in names for v in columns[name]]
    if bool in set(map(type, flat)):
        return {}
    try:
        block = pa.array(flat, type=pa.float64(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return {}
    if np.isinf(block.to_numpy(zero_copy_only=False)).any():
        return {}
    n = len(flat) // len(names)
    return {name: block.slice(j * n, n) for j, name in enumerate(names)}


def _numbers(values: list) -> tuple[pa.Array | None, list[tuple[int, str]]]:
    try:
        array = pa.array(values, type=pa.float64(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        array = None
    if array is not None and not any(isinstance(v, bool) for v in values):
        # NaN and null are missing values; only infinities are refused. numpy on the (null-as-NaN) copy,
        # not Arrow compute calls: on a one-row request those calls cost more than the prediction.
        if np.isinf(array.to_numpy(zero_copy_only=False)).any():
            return None, [(i, "not a finite number") for i, v in enumerate(values) if _is_inf(v)]
        return array, []
    bad = []
    for i, v in enumerate(values):
        if v is None or (isinstance(v, int | float) and not isinstance(v, bool)):
            if _is_inf(v):
                bad.append((i, "not a finite number"))
            elif isinstance(v, int) and abs(v) > EXACT_INT:
                bad.append((i, f"an integer too large to be exact as a number (beyond 2**53): {_show(v)}"))
            continue
        bad.append((i, f"expected a number, got {_show(v)}"))
    return None, bad or [(0, "cannot be read as numbers")]


def _categories(values: list) -> tuple[pa.Array | None, list[tuple[int, str]]]:
    bad = [(i, f"expected a category value, got {_show(v)}") for i, v in enumerate(values) if _nested(v)]
    if bad:
        return None, bad
    try:
        return pa.array(values, from_pandas=True), []
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):  # mixed kinds: compare as text
        return pa.array([None if v is None else str(v) for v in values], pa.string()), []


def _datetimes(values: list) -> tuple[pa.Array | None, list[tuple[int, str]]]:
    bad = [(i, f"expected an ISO date/time string, got {_show(v)}") for i, v in enumerate(values)]
    bad = [b for b, v in zip(bad, values, strict=True) if v is not None and not isinstance(v, str)]
    if bad:
        return None, bad
    try:
        return pc.cast(pa.array(values, pa.string()), pa.timestamp("us")), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out = []
    for i, v in enumerate(values):
        try:
            pc.cast(pa.array([v], pa.string()), pa.timestamp("us"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out.append((i, f"not an ISO date/time: {_show(v)}"))
    return None, out


_NUMBER, _CATEGORY, _DATETIME = _numbers, _categories, _datetimes


def _is_inf(v: Any) -> bool:
    return isinstance(v, float) and math.isinf(v)


def _nested(v: Any) -> bool:
    return isinstance(v, list | dict)


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
