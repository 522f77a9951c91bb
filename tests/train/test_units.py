"""The pieces that need no Ray: report cadence, early stopping, resources, metrics, parameters."""

from __future__ import annotations

import pytest

from app.train.cadence import Cadence, Stopper
from app.train.cli import parse_params
from app.train.metrics import resolve_metrics
from app.train.resources import GPUUnavailableError, check_gpus, worker_cpus, worker_threads


class Clock:
    def __init__(self, per_round: float) -> None:
        self.now, self.per_round = 0.0, per_round

    def __call__(self) -> float:
        return self.now


def reported_rounds(*, per_round: float, rounds: int = 200, **kwargs) -> list[int]:
    clock = Clock(per_round)
    cadence = Cadence(clock=clock, **kwargs)
    out = []
    for done in range(1, rounds + 1):
        clock.now += per_round
        if cadence.due(done):
            out.append(done)
    return out


def test_slow_rounds_report_every_n_rounds():
    rounds = reported_rounds(per_round=1.0, every_rounds=50, every_s=None, min_interval_s=2.0)
    assert rounds == [50, 100, 150, 200]


def test_fast_rounds_never_report_closer_than_the_minimum_interval():
    rounds = reported_rounds(per_round=0.0625, every_rounds=10, every_s=None, min_interval_s=2.0)
    assert rounds == [32, 64, 96, 128, 160, 192]  # 2 s apart, not every 10 rounds


def test_very_slow_rounds_report_at_least_every_every_s():
    rounds = reported_rounds(per_round=10.0, rounds=20, every_rounds=50, every_s=30.0, min_interval_s=2.0)
    assert rounds[:3] == [1, 4, 7]


def test_followers_take_the_leaders_decisions():
    decisions = []

    def broadcast(decision):
        if decision is not None:
            decisions.append(decision)
        return decisions[-1]

    leader = Cadence(every_rounds=5, every_s=None, min_interval_s=0.0, broadcast=broadcast)
    follower = Cadence(every_rounds=5, every_s=None, min_interval_s=0.0, leader=False, broadcast=broadcast)
    for done in range(1, 21):
        assert leader.due(done) == follower.due(done)
    assert leader.next_round == follower.next_round == 25


def test_early_stopping_counts_rounds_without_gain_in_the_metrics_direction():
    (metric,) = resolve_metrics("xgboost", "regression", None)
    stopper = Stopper(metric, patience=3)
    stops = [stopper.update(i, v) for i, v in enumerate([5.0, 4.0, 4.5, 4.2, 4.1])]
    assert stops == [False, False, False, False, True] and stopper.best_iteration == 1
    (auc,) = resolve_metrics("lightgbm", "binary", ["auc"])
    maximise = Stopper(auc, patience=None)
    for i, v in enumerate([0.7, 0.9, 0.8]):
        assert not maximise.update(i, v)
    assert maximise.best_iteration == 1


def test_metrics_map_to_each_library_and_accuracy_reads_the_error_rate():
    xgb = {m.name: m for m in resolve_metrics("xgboost", "multiclass", None)}
    assert xgb["mlogloss"].native == "mlogloss" and xgb["accuracy"].native == "merror"
    assert xgb["accuracy"].value(0.25) == pytest.approx(0.75) and xgb["accuracy"].maximize
    lgb = [m.native for m in resolve_metrics("lightgbm", "binary", None)]
    cat = [m.native for m in resolve_metrics("catboost", "regression", None)]
    assert lgb == ["binary_logloss", "auc"] and cat == ["RMSE"]
    (custom,) = resolve_metrics("xgboost", "binary", ["aucpr"])
    assert custom.native == "aucpr" and custom.maximize


def test_workers_leave_a_cpu_for_ray_data():
    assert worker_cpus(requested=1.0, num_workers=1, cluster_cpus=2) == 1.0
    assert worker_cpus(requested=1.0, num_workers=2, cluster_cpus=2) == 0.5
    assert worker_cpus(requested=4.0, num_workers=2, cluster_cpus=16) == 4.0
    assert worker_threads(requested_threads=None, cpus_per_worker=0.5) == 1
    assert worker_threads(requested_threads=None, cpus_per_worker=4) == 4
    assert worker_threads(requested_threads=2, cpus_per_worker=0.5) == 2


def test_a_gpu_request_on_a_cluster_without_gpus_is_a_clear_error():
    with pytest.raises(GPUUnavailableError, match="one GPU per worker .* 0 GPU"):
        check_gpus(num_workers=1, cluster_gpus=0)


def test_params_are_parsed_into_numbers_bools_and_strings():
    assert parse_params(["max_depth=6", "eta=0.1", "verbose=false", "device=cuda"]) == {
        "max_depth": 6,
        "eta": 0.1,
        "verbose": False,
        "device": "cuda",
    }


def test_fill_rows_writes_columns_into_rows_in_blocks():
    import numpy as np

    from app.train.matrix import feature_matrix, fill_rows

    rng = np.random.default_rng(0)
    columns = [rng.standard_normal(1003).astype(np.float32) for _ in range(5)]
    out = np.full((1010, 5), -1.0, dtype=np.float32)
    fill_rows(out, 7, columns, step=100)  # a last block shorter than the step, from row 7 on
    assert np.array_equal(out[7:], np.column_stack(columns))
    assert (out[:7] == -1).all()
    matrix = feature_matrix({f"c{j}": c for j, c in enumerate(columns)}, [f"c{j}" for j in range(5)])
    assert matrix.flags.c_contiguous and np.array_equal(matrix, np.column_stack(columns))
