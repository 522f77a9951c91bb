"""Run tree, metric histories and batching against a real ``mlflow server``."""

from __future__ import annotations

import pytest

from app.tracking.tracker import FAMILY_TAG, PARENT_TAG, TRIAL_STATUS_TAG, MLflowTracker

from .conftest import histories


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_trials_are_child_runs_of_the_automl_run_with_their_metric_history(tracker):
    curves = histories(3, rounds=200)
    parent = tracker.start_run("automl", tags={"automl.kind": "automl"})
    tracker.log_params({"num_samples": 3, "families": "xgboost,lightgbm"})
    statuses = ["completed", "stopped", "errored"]
    trial_ids = [
        tracker.log_trial(
            parent,
            "xgboost" if i != 1 else "lightgbm",
            {"eta": 0.1 * (i + 1), "max_depth": 4 + i},
            curves[i],
            rounds=len(curves[i]),
            status=status,
            metric="logloss",
            run_name=f"trial_{i}",
            error="worker died" if status == "errored" else None,
        )
        for i, status in enumerate(statuses)
    ]
    tracker.end_run()

    client = tracker.client
    children = client.search_runs([tracker.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'")
    assert sorted(r.info.run_id for r in children) == sorted(trial_ids)
    for i, run_id in enumerate(trial_ids):
        run = client.get_run(run_id)
        assert _history(client, run_id, "logloss") == [(step, v) for step, v in enumerate(curves[i])]
        assert run.data.params == {"eta": str(0.1 * (i + 1)), "max_depth": str(4 + i)}
        assert run.data.metrics["rounds"] == 200
        assert run.data.tags[TRIAL_STATUS_TAG] == statuses[i]
        assert run.data.tags[FAMILY_TAG] == ("lightgbm" if i == 1 else "xgboost")
        assert run.info.status == ("FAILED" if statuses[i] == "errored" else "FINISHED")
    assert client.get_run(trial_ids[2]).data.tags["automl.error"] == "worker died"
    assert client.get_run(parent).data.params["num_samples"] == "3"
    assert client.get_run(parent).info.status == "FINISHED"


def test_metrics_go_out_in_log_batch_calls_only(tracker, monkeypatch):
    client = tracker.client
    batches, singles = [], []
    real_log_batch = client.log_batch
    monkeypatch.setattr(client, "log_batch", lambda *a, **k: batches.append(k) or real_log_batch(*a, **k))
    monkeypatch.setattr(client, "log_metric", lambda *a, **k: singles.append(a))
    monkeypatch.setattr(client, "log_param", lambda *a, **k: singles.append(a))

    tracker.start_run("automl")
    child = tracker.start_run("trial", nested=True)
    tracker.log_params({"eta": 0.3})
    values = [1.0 / (i + 1) for i in range(150)]
    tracker.log_metric_history("valid_logloss", values, steps=list(range(0, 300, 2)))
    for step in range(3):
        tracker.log_metrics({"lr": 0.1 * step}, step=step)
    tracker.end_run()
    tracker.end_run()

    assert singles == []
    assert len(batches) == 1  # one flush at the child's end: 1 param + 153 metric values
    assert _history(client, child, "valid_logloss") == list(zip(range(0, 300, 2), values, strict=True))
    assert [v for _, v in _history(client, child, "lr")] == pytest.approx([0.0, 0.1, 0.2])


def test_large_histories_are_split_within_mlflow_batch_limits(tracker):
    from mlflow.entities import Metric, Param

    run_id = tracker.start_run("big")
    tracker.end_run()
    metrics = [Metric("m", float(i), 0, i) for i in range(2500)]
    params = [Param(f"p{i}", str(i)) for i in range(150)]
    calls = tracker.log_batch_chunked(run_id, metrics=metrics, params=params)
    assert calls == 3
    assert len(tracker.client.get_metric_history(run_id, "m")) == 2500
    assert len(tracker.client.get_run(run_id).data.params) == 150


def test_get_best_run_maximises_scores_and_minimises_losses(tracker):
    runs = {}
    for name, score, loss in [("a", 0.80, 0.5), ("b", 0.91, 0.4), ("c", 0.85, 0.3)]:
        runs[name] = tracker.start_run(name)
        tracker.log_metrics({"test_score": score, "valid_logloss": loss})
        tracker.end_run()
    tracker.start_run("no-metrics")
    tracker.end_run()

    assert tracker.get_best_run(metric="test_score").info.run_id == runs["b"]
    assert tracker.get_best_run(metric="valid_logloss").info.run_id == runs["c"]
    assert tracker.get_best_run(metric="test_score", mode="min").info.run_id == runs["a"]
    assert tracker.get_best_run(metric="not_logged") is None


def test_a_failing_block_ends_its_run_failed(tracker):
    with pytest.raises(RuntimeError), tracker.run("boom") as run_id:
        raise RuntimeError("trial crashed")
    assert tracker.client.get_run(run_id).info.status == "FAILED"
    assert tracker.active_run_id is None


def test_embedded_default_is_a_sqlite_store_under_the_run_dir(tmp_path):
    tracker = MLflowTracker(run_dir=tmp_path)
    assert tracker.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = tracker.start_run("local")
    tracker.log_metrics({"val_score": 0.5})
    tracker.end_run()
    assert (tmp_path / "mlflow.db").is_file()
    assert tracker.client.get_run(run_id).data.metrics == {"val_score": 0.5}
    assert tracker.get_best_run("val_score").info.run_id == run_id


def test_a_trial_costs_three_calls_whatever_its_history_length(tracker, monkeypatch):
    parent = tracker.start_run("automl")
    calls = []
    for name in ("create_run", "log_batch", "set_terminated", "log_metric", "log_param", "set_tag"):
        real = getattr(tracker.client, name)
        monkeypatch.setattr(
            tracker.client, name, lambda *a, _n=name, _r=real, **k: calls.append(_n) or _r(*a, **k)
        )

    tracker.log_trial(parent, "catboost", {"depth": 6, "l2_leaf_reg": 3}, [0.5] * 500, 500, "completed")

    assert calls == ["create_run", "log_batch", "set_terminated"]
    tracker.end_run()


def test_leaderboard_profile_and_tables_are_run_artifacts(tracker):
    import pandas as pd

    board = pd.DataFrame({"trial": ["t0", "t1"], "family": ["xgboost", "catboost"], "logloss": [0.2, 0.3]})
    run_id = tracker.start_run("automl")
    tracker.log_run_artifacts(leaderboard=board, profile={"rows": 400, "columns": {"x0": {"mean": 0.0}}})
    tracker.end_run()

    assert {a.path for a in tracker.client.list_artifacts(run_id)} == {"leaderboard.csv", "data_profile.json"}
    local = tracker.client.download_artifacts(run_id, "leaderboard.csv")
    pd.testing.assert_frame_equal(pd.read_csv(local), board)
