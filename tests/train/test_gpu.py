"""GPU requests on this CPU-only machine fail early and say why."""

from __future__ import annotations

import pytest

from app.config import TrainConfig
from app.train import GPUUnavailableError, train
from tests.train.conftest import datasets, preprocessor


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "catboost"])
def test_use_gpu_without_a_gpu_in_the_cluster_is_a_clear_error(ray_session, family):
    if ray_session.cluster_resources().get("GPU", 0):
        pytest.skip("this cluster has a GPU")
    config = TrainConfig(family=family, use_gpu=True, num_boost_round=5)
    with pytest.raises(GPUUnavailableError, match="GPU"):
        train(datasets("binary", rows=200), config=config, preprocessor=preprocessor("binary"), num_rows=160)


def test_lightgbm_without_a_cuda_build_says_so():
    import lightgbm

    from app.train.lgbm import gpu_device_type

    try:
        device = gpu_device_type()
    except GPUUnavailableError as exc:
        assert "CUDA" in str(exc) and lightgbm.__version__ in str(exc)
    else:
        assert device == "cuda"


def test_gpu_parameters_per_family():
    from app.train import cat, xgb
    from app.train.metrics import resolve_metrics

    metrics = resolve_metrics("xgboost", "binary", None)
    common = dict(task="binary", num_classes=2, metrics=metrics, threads=1, use_gpu=True, params={})
    assert xgb.build_params(objective="binary:logistic", **common)["device"] == "cuda"
    cat_metrics = resolve_metrics("catboost", "binary", None)
    params = cat.build_params(objective="Logloss", **{**common, "metrics": cat_metrics})
    assert params["task_type"] == "GPU"


def test_batches_stay_on_the_host_without_cuda_or_cupy(monkeypatch, caplog):
    import sys

    from app.train.xgb import device_copier

    assert device_copier("cpu") is None
    monkeypatch.setitem(sys.modules, "cupy", None)  # as if CuPy were not installed
    assert device_copier("cuda") is None
    assert "CuPy is not installed" in caplog.text


def test_xgboost_trains_on_the_gpu_like_on_the_cpu(ray_session, tmp_path, trained, holdout):
    """GPU training, then GPU batch scoring of its model. Runs where the Ray cluster has a GPU (the lent
    device machine); skipped on CPU-only machines."""
    import numpy as np

    if not ray_session.cluster_resources().get("GPU", 0):
        pytest.skip("this cluster has no GPU")
    pytest.importorskip("cupy")
    config = TrainConfig(family="xgboost", use_gpu=True, num_boost_round=40, storage_path=str(tmp_path))
    gpu = train(datasets("binary"), config=config, preprocessor=preprocessor("binary"), num_rows=2400)
    assert gpu.ingest["batch_device"] == "cuda"
    assert gpu.ingest["rows"] == 2400
    cpu = trained("xgboost", "binary")
    df = holdout("binary")
    p_gpu, p_cpu = gpu.predictor().predict_proba(df)[:, 1], cpu.predictor().predict_proba(df)[:, 1]
    assert np.corrcoef(p_gpu, p_cpu)[0, 1] > 0.95
    y = df["y"].to_numpy()
    accuracy = float(np.mean((p_gpu > 0.5) == y))
    assert accuracy > max(y.mean(), 1 - y.mean()) + 0.2

    # Batch scoring on the GPU (one actor holding the GPU) gives the in-process predictor's output.
    from app.train import save_model, score_dataset

    model_dir = save_model(gpu, tmp_path / "model")
    df = df.reset_index(drop=True)
    df["row"] = np.arange(len(df))
    ds = ray_session.data.from_pandas([df.iloc[i : i + 250] for i in range(0, len(df), 250)])
    scored = score_dataset(ds, model_dir, num_gpus=1, num_cpus=0.25, proba=True, batch_size=256)
    out = scored.to_pandas().sort_values("row").reset_index(drop=True)
    np.testing.assert_allclose(out["proba_1"], p_gpu, rtol=1e-5, atol=1e-6)
