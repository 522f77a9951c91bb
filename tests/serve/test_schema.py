"""Request bodies: MLflow's three JSON layouts and Arrow/Parquet give the same rows; every kind of bad
input is a 4xx naming the field (and row)."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.serve.schema import FeatureSchema, RequestError, _typed_table, parse_rows

SCHEMA = FeatureSchema(("x", "city", "day"), frozenset({"city"}), frozenset({"day"}))
ROWS = [{"x": 1.5, "city": "paris", "day": "2024-01-02"}, {"x": None, "city": "atlantis", "day": None}]


def parse(body, content_type="application/json", max_rows=100):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_rows(raw, content_type, SCHEMA, max_rows=max_rows).table


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_records": ROWS},
        {
            "dataframe_split": {
                "columns": ["day", "x", "city"],
                "data": [[r["day"], r["x"], r["city"]] for r in ROWS],
            }
        },
        {"inputs": {k: [r[k] for r in ROWS] for k in ("x", "city", "day")}},
        {"inputs": [[r["x"], r["city"], r["day"]] for r in ROWS]},
        {"instances": ROWS},
    ],
    ids=["records", "split", "inputs-columns", "inputs-rows", "instances"],
)
def test_every_json_layout_gives_the_same_rows(body):
    table = parse(body)
    assert table.column_names == ["x", "city", "day"]
    assert table.column("x").to_pylist() == [1.5, None]
    assert table.column("city").to_pylist() == ["paris", "atlantis"]  # unknown levels are fine
    assert table.column("day").type == pa.timestamp("us")


def test_arrow_and_parquet_bodies_are_read():
    table = pa.table({"x": [1.0], "city": ["lyon"], "day": ["2024-01-01"]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    assert parse(sink.getvalue(), "application/vnd.apache.parquet").num_rows == 1
    stream = pa.BufferOutputStream()
    with pa.ipc.new_stream(stream, table.schema) as writer:
        writer.write_table(table)
    assert parse(stream.getvalue().to_pybytes(), "application/vnd.apache.arrow.stream").num_rows == 1


def test_nan_tokens_are_missing_values_but_infinity_is_refused():
    assert parse(b'{"inputs": {"x": [NaN], "city": ["a"], "day": [null]}}').column("x").null_count == 1
    with pytest.raises(RequestError) as err:
        parse(b'{"inputs": {"x": [1, Infinity], "city": ["a", "b"], "day": [null, null]}}')
    assert err.value.status == 422 and err.value.problems[0] == {
        "field": "x",
        "row": 1,
        "message": "not a finite number",
    }


BAD = [
    (b"{not json", "application/json", 400, None, "malformed JSON"),
    (b"[1, 2]", "application/json", 400, None, "JSON object"),
    (b'{"rows": []}', "application/json", 400, "rows", "exactly one of"),
    (b"x", "text/csv", 415, None, "unsupported content type"),
    (b"garbage", "application/vnd.apache.parquet", 400, None, "unreadable"),
    (json.dumps({"dataframe_records": [{"x": 1, "city": "a"}]}).encode(), None, 422, "day", "missing column"),
    (json.dumps({"dataframe_records": [{**ROWS[0], "y": 1}]}).encode(), None, 422, "y", "unknown column"),
    (
        json.dumps({"dataframe_records": [{**ROWS[0], "x": "abc"}]}).encode(),
        None,
        422,
        "x",
        "expected a number",
    ),
    (
        json.dumps({"dataframe_records": [{**ROWS[0], "x": True}]}).encode(),
        None,
        422,
        "x",
        "expected a number",
    ),
    (json.dumps({"dataframe_records": [{**ROWS[0], "city": [1]}]}).encode(), None, 422, "city", "category"),
    (json.dumps({"dataframe_records": [{**ROWS[0], "day": "soon"}]}).encode(), None, 422, "day", "date/time"),
    (
        json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1, 2]]}}).encode(),
        None,
        422,
        None,
        "values",
    ),
    (json.dumps({"dataframe_records": []}).encode(), None, 422, None, "no rows"),
    (
        json.dumps({"dataframe_records": [ROWS[0], {"x": 1, "city": "a"}]}).encode(),
        None,
        422,
        "day",
        "missing field",
    ),
    (json.dumps({"dataframe_records": ROWS * 60}).encode(), None, 413, None, "limit is 100"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "field", "words"), BAD)
def test_bad_requests_are_4xx_naming_the_problem(body, content_type, status, field, words):
    with pytest.raises(RequestError) as err:
        parse(body, content_type)
    assert err.value.status == status
    assert words in err.value.message or any(words in p["message"] for p in err.value.problems)
    if field is not None:
        assert field in [p["field"] for p in err.value.problems]
        assert field in err.value.message or err.value.problems[0]["field"] == field


NUMBERS = FeatureSchema(("a", "b", "c"))
NUMBER_ROWS = [{"a": 1, "b": 2.5, "c": None}, {"a": -0.5, "b": 1e3, "c": 7}]
NUMBER_LISTS = [[r["a"], r["b"], r["c"]] for r in NUMBER_ROWS]


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_records": NUMBER_ROWS},
        {"dataframe_split": {"columns": ["a", "b", "c"], "data": NUMBER_LISTS}},
        {"dataframe_split": {"columns": ["c", "a", "b"], "data": [[r[2], r[0], r[1]] for r in NUMBER_LISTS]}},
        {"inputs": {k: [r[k] for r in NUMBER_ROWS] for k in ("b", "c", "a")}},
        {"inputs": NUMBER_LISTS},
        {"instances": NUMBER_ROWS, "params": {}},
    ],
    ids=["records", "split", "split-reordered", "inputs-columns", "inputs-rows", "instances-params"],
)
def test_numeric_models_rows_arrive_as_one_matrix_holding_what_the_column_parse_holds(body):
    """A model whose features are all numbers takes JSON rows as one float64 matrix (features in order,
    NaN for null); its table is the one the column-by-column parse makes of the same rows."""
    rows = parse_rows(json.dumps(body).encode(), "application/json", NUMBERS, max_rows=10)
    assert rows.matrix is not None and rows.num_rows == 2
    np.testing.assert_array_equal(rows.matrix, [[1.0, 2.5, np.nan], [-0.5, 1000.0, 7.0]])
    columns = {k: [r[k] for r in NUMBER_ROWS] for k in ("a", "b", "c")}
    assert rows.table.equals(_typed_table(columns, NUMBERS))
    assert rows.take([1]).table.to_pylist() == [{"a": -0.5, "b": 1000.0, "c": 7.0}]


NUMBER_BAD = [
    ({"dataframe_records": [{**NUMBER_ROWS[0], "b": True}]}, 422, "b", "expected a number"),
    ({"dataframe_records": [{**NUMBER_ROWS[0], "b": "2.5"}]}, 422, "b", "expected a number"),
    ({"dataframe_records": [{**NUMBER_ROWS[0], "c": [1]}]}, 422, "c", "expected a number"),
    ({"dataframe_records": [NUMBER_ROWS[0], {"a": 1, "b": 2}]}, 422, "c", "missing field"),
    ({"dataframe_records": [{"a": 1, "b": 2}]}, 422, "c", "missing column"),
    ({"dataframe_records": [{**NUMBER_ROWS[0], "d": 1}]}, 422, "d", "unknown column"),
    ({"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2]]}}, 422, None, "values"),
    ({"dataframe_split": {"columns": ["a", "a", "c"], "data": [[1, 2, 3]]}}, 422, None, "repeated"),
    ({"inputs": [[1, 2, 3]] * 11}, 413, None, "limit is 10"),
    ({"inputs": []}, 422, None, "no rows"),
    ({"inputs": [[1, 2, 3]], "rows": []}, 400, "rows", "unknown key"),
    ({"dataframe_records": [[1, 2, 3]]}, 422, "dataframe_records", "not objects"),
    ({"dataframe_records": {"a": [1], "b": [2], "c": [3]}}, 400, None, "list of objects"),
]


@pytest.mark.parametrize(("body", "status", "field", "words"), NUMBER_BAD)
def test_numeric_models_bad_rows_are_4xx_naming_the_problem(body, status, field, words):
    with pytest.raises(RequestError) as err:
        parse_rows(json.dumps(body).encode(), "application/json", NUMBERS, max_rows=10)
    assert err.value.status == status
    assert words in err.value.message or any(words in p["message"] for p in err.value.problems)
    if field is not None:
        assert field in [p["field"] for p in err.value.problems]


def test_numeric_models_infinity_is_refused_by_row():
    with pytest.raises(RequestError) as err:
        parse_rows(b'{"inputs": [[1, 2, 3], [1, -Infinity, 3]]}', "application/json", NUMBERS, max_rows=10)
    assert err.value.status == 422
    assert err.value.problems[0] == {"field": "b", "row": 1, "message": "not a finite number"}


@pytest.mark.parametrize("copies", [1, 40], ids=["numpy", "arrow"])  # FEW_ROWS splits the two ways
@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (True, "expected a number"),
        ("2.5", "expected a number"),
        ([1], "expected a number"),
        (2**53 + 1, "too large"),
        (float("inf"), "not a finite number"),
    ],
)
def test_numeric_models_refuse_the_same_values_in_few_rows_and_many(copies, bad, words):
    lists = NUMBER_LISTS * copies
    good = parse_rows(json.dumps({"inputs": lists}).encode(), "application/json", NUMBERS, max_rows=100)
    assert good.matrix is not None and good.matrix.shape == (len(lists), 3)
    assert np.isnan(good.matrix[0, 2]) and good.matrix[-1, 1] == 1000.0
    row = len(lists) - 1
    lists = [*lists[:-1], [1, bad, 3]]
    with pytest.raises(RequestError) as err:
        parse_rows(json.dumps({"inputs": lists}).encode(), "application/json", NUMBERS, max_rows=100)
    assert err.value.status == 422
    assert err.value.problems[0]["field"] == "b" and err.value.problems[0]["row"] == row
    assert words in err.value.problems[0]["message"]
    ragged = [*lists[:-1], [1, 2]]
    with pytest.raises(RequestError):
        parse_rows(json.dumps({"inputs": ragged}).encode(), "application/json", NUMBERS, max_rows=100)
