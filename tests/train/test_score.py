"""Batch scoring of a Ray Dataset through an actor pool matches the in-process predictor."""

from __future__ import annotations

import numpy as np
import pytest

from app.train import save_model, score_dataset

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_actor_pool_scoring_equals_the_predictor(ray_session, trained, holdout, tmp_path, task):
    weighted = task == "regression"
    result = trained("xgboost", task, weighted=weighted)
    model_dir = save_model(result, tmp_path / "model")
    df = holdout(task, weighted=weighted).reset_index(drop=True)
    df["row"] = np.arange(len(df))
    # from_pandas(df, override_num_blocks=n) breaks on pandas 3 (np.array_split returns ndarrays)
    ds = ray_session.data.from_pandas([df.iloc[i : i + 250] for i in range(0, len(df), 250)])
    scored = score_dataset(ds, model_dir, concurrency=2, num_cpus=0.25, proba=True, batch_size=256)
    out = scored.to_pandas().sort_values("row").reset_index(drop=True)
    predictor = result.predictor()
    if task == "regression":
        np.testing.assert_allclose(out["prediction"], predictor.predict(df), rtol=1e-6)
        return
    assert list(out["prediction"]) == list(predictor.predict(df))
    proba = out[[f"proba_{c}" for c in predictor.classes]].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(proba, predictor.predict_proba(df), rtol=1e-6)
