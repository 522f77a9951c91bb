"""Checkpoints: a killed worker resumes from the last one; they can live on S3; large shards stream."""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow.fs as pafs
import pytest

from app.config import TrainConfig
from app.train import train
from tests.train import hooks
from tests.train.conftest import ROWS, datasets, preprocessor

pytestmark = pytest.mark.slow


def test_a_killed_worker_resumes_from_the_last_checkpoint_with_the_same_round_count(ray_session, storage_dir):
    config = TrainConfig(
        family="xgboost",
        num_boost_round=40,
        early_stopping_rounds=None,
        checkpoint_every=10,
        report_every_s=None,
        min_report_interval_s=0,
        max_failures=1,
        storage_path=str(storage_dir),
    )
    result = train(
        datasets("binary"),
        config=config,
        preprocessor=preprocessor("binary"),
        num_rows=int(0.8 * ROWS),
        round_hook=hooks.kill_first_attempt,
    )
    assert result.resumed_from_round in (10, 20)  # restored a checkpoint written before the kill
    assert result.num_rounds == 40 and result.model.num_boosted_rounds() == 40
    assert len(result.history["logloss"]) == 40
    assert result.history["logloss"][-1] < result.history["logloss"][0]


@pytest.fixture(scope="module")
def streamed(ray_session, s3_endpoint):
    """An XGBoost run whose shard is over the memory budget, checkpointing to (moto) S3."""
    s3_bucket = f"train-{uuid.uuid4().hex[:10]}"
    s3_endpoint.client().create_bucket(Bucket=s3_bucket)
    fs = pafs.S3FileSystem(
        access_key=s3_endpoint.access_key,
        secret_key=s3_endpoint.secret_key,
        region=s3_endpoint.region,
        endpoint_override=s3_endpoint.endpoint_url.split("://", 1)[1],
        scheme="http",
    )
    config = TrainConfig(
        family="xgboost",
        num_boost_round=40,
        early_stopping_rounds=10,
        memory_budget_bytes=50_000,
        batch_rows=500,
        storage_path=f"s3://{s3_bucket}/runs",
    )
    result = train(
        datasets("binary"),
        config=config,
        preprocessor=preprocessor("binary"),
        num_rows=int(0.8 * ROWS),
        storage_filesystem=fs,
    )
    return result, fs, s3_bucket


def test_a_shard_over_the_memory_budget_streams_through_external_memory(streamed, trained, holdout):
    result, _, _ = streamed
    assert result.ingest["mode"] == "external_memory"
    assert result.ingest["spill_bytes"] > 50_000 and result.ingest["batches"] >= 4
    assert result.ingest["rows"] == int(0.8 * ROWS)
    in_memory = trained("xgboost", "binary")
    assert in_memory.ingest["mode"] == "in_memory"
    df = holdout("binary")
    gap = np.abs(result.predictor().predict_proba(df) - in_memory.predictor().predict_proba(df))
    assert gap.mean() < 0.02


def test_checkpoints_are_written_to_s3(streamed):
    result, fs, bucket = streamed
    assert result.checkpoint_path.startswith(f"{bucket}/runs/")
    files = fs.get_file_info(pafs.FileSelector(f"{bucket}/runs", recursive=True))
    names = {f.base_name for f in files}
    assert {"model.ubj", "state.json"} <= names
