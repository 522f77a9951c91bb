"""The application of serve_config.yaml on Ray Serve, over HTTP: parity with ``load_model``, the cache,
a Redis that goes away, validation, model swaps and the OpenAPI contract."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from app.testing.wait import wait_until
from app.train import load_model

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "family",
    ["xgboost", "lightgbm", "catboost", "ensemble", "bagged"]
    + ["xgboost-numbers", "lightgbm-numbers", "catboost-numbers", "ensemble-numbers"],
)
def test_predictions_equal_load_model_for_each_family_and_an_ensemble(
    service, family_dirs, rows, family, request
):
    frame, records = rows
    if family == "bagged":  # a bag of fold models, as a fit with search.bagging writes it
        family_dirs = {**family_dirs, "bagged": request.getfixturevalue("bagged_dir")}
    if family.endswith("-numbers"):  # a model of numbers alone: rows as one matrix, a null among them
        frame = frame.drop(columns=["city", "signup"])
        records = [{k: r[k] for k in frame.columns} for r in records]
        assert any(r["x3"] is None for r in records)
    service.deploy(family_dirs[family])
    status, headers, body = service.post({"dataframe_records": records})
    assert status == 200, body
    expected = load_model(family_dirs[family]).predict_proba(frame)
    got = np.array([[p["proba_0"], p["proba_1"]] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    labels = load_model(family_dirs[family]).predict(frame)
    assert [p["prediction"] for p in body["predictions"]] == labels.tolist()
    assert len({p["prediction_id"] for p in body["predictions"]}) == len(records)
    assert body["model"] == {"name": family, "version": headers["x-model-version"]}
    if family.endswith("-numbers"):  # the same rows in another layout and column order: the same answers
        columns = list(reversed(frame.columns))
        split = {"columns": columns, "data": [[r[c] for c in columns] for r in records]}
        status, _, again = service.post({"dataframe_split": split})
        assert status == 200, again
        assert [p["proba_1"] for p in again["predictions"]] == [p["proba_1"] for p in body["predictions"]]


def test_a_repeated_request_is_a_cache_hit_and_a_new_version_is_not(service, family_dirs, rows):
    _, records = rows
    service.deploy(family_dirs["xgboost"])
    row = {**records[0], "x0": float(np.random.default_rng().normal())}  # a row never sent before
    one = {"dataframe_split": {"columns": list(row), "data": [list(row.values())]}}
    first = service.post(one)
    second = service.post(one)
    assert first[0] == second[0] == 200
    assert int(second[1]["x-cache-hits"]) == 1
    assert second[2]["predictions"][0]["prediction"] == first[2]["predictions"][0]["prediction"]
    service.deploy(family_dirs["lightgbm"])
    third = service.post(one)
    assert third[1]["x-model-version"] != first[1]["x-model-version"]
    assert int(third[1]["x-cache-hits"]) == 0  # keys carry the version: no stale answer


def test_every_request_succeeds_while_redis_is_down_and_the_cache_comes_back(
    service, own_redis, family_dirs, rows
):
    _, records = rows
    service.deploy(family_dirs["xgboost"])
    own_redis.stop()
    try:
        statuses = [service.post({"dataframe_records": [r]})[0] for r in records[:20]]
        assert statuses == [200] * 20
        status, ready = service.get("/readyz")
        assert status == 200 and ready["cache"]["ok"] is False
    finally:
        own_redis.start()

    # The cache is skipped for redis_retry_s after a failure: the same row twice, until the second is a hit.
    def second_is_a_hit() -> bool:
        service.post({"dataframe_records": records[:1]})
        return int(service.post({"dataframe_records": records[:1]})[1]["x-cache-hits"]) == 1

    wait_until(second_is_a_hit, timeout_s=30, what="the cache back after Redis restarted")


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        (lambda r: {**r, "x0": "abc"}, 422, "x0"),
        (lambda r: {k: v for k, v in r.items() if k != "city"}, 422, "city"),
        (lambda r: {**r, "extra": 1}, 422, "extra"),
    ],
    ids=["wrong-type", "missing", "unknown"],
)
def test_bad_rows_are_4xx_naming_the_field(service, rows, mutate, status, field):
    _, records = rows
    code, _, body = service.post({"dataframe_records": [records[0], mutate(records[1])]})
    assert code == status
    assert field in body["error"] or body["detail"][0]["field"] == field


def test_malformed_body_wrong_content_type_and_too_many_rows(service, rows):
    _, records = rows
    assert service.post(b"{oops")[0] == 400
    assert service.post(b"a,b\n1,2", content_type="text/csv")[0] == 415
    assert service.post({"dataframe_records": records * 300})[0] == 413


def test_model_health_and_docs_endpoints(service):
    assert service.get("/healthz") == (200, {"status": "ok"})
    status, info = service.get("/model")
    assert status == 200 and info["task"] == "binary" and info["classes"] == [0, 1]
    assert {"name": "city", "type": "category"} in info["features"]
    status, schema = service.get("/openapi.json")
    assert status == 200 and "/predict" in schema["paths"] and "/invocations" in schema["paths"]


def test_schemathesis_finds_no_server_error_in_the_openapi_contract(service, tmp_path):
    proc = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{service.url}/openapi.json",
            "--checks", "not_a_server_error", "--max-examples", "25", "--no-color",
        ],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
