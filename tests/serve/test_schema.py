"""Request bodies: MLflow's three JSON layouts and Arrow/Parquet give the same rows; every kind of bad
input is a 4xx naming the field (and row)."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.serve.schema import FeatureSchema, RequestError, parse_rows

SCHEMA = FeatureSchema(("x", "city", "day"), frozenset({"city"}), frozenset({"day"}))
ROWS = [{"x": 1.5, "city": "paris", "day": "2024-01-02"}, {"x": None, "city": "atlantis", "day": None}]


def parse(body, content_type="application/json", max_rows=100):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_rows(raw, content_type, SCHEMA, max_rows=max_rows)


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
