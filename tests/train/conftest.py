"""Fixtures of the training tests: small generated frames, their preprocessor, and a cache of trained
runs that the tests which only inspect a run share (each Ray Train run costs ~15 s here)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from app.data import Preprocessor
from app.data.synthetic import make_frame

ROWS = 3000
ROUNDS = 40
CITIES = ["paris", "lyon", "nice", "lille"]
GRADES = ["low", "mid", "high", "top"]  # multiclass labels are strings, so decoding is exercised


def frame(task: str, *, rows: int = ROWS, seed: int = 0, weighted: bool = False) -> pd.DataFrame:
    """``make_frame`` data; multiclass targets as strings, and a ``w`` weight column when asked."""
    df = make_frame(rows, task=task, seed=seed)
    if task == "multiclass":
        df["y"] = np.asarray(GRADES, dtype=object)[df["y"].to_numpy()]
    if weighted:
        df["w"] = np.random.default_rng(seed + 1).uniform(0.5, 2.0, rows)
    return df


def preprocessor(task: str, *, weighted: bool = False) -> Preprocessor:
    """The preprocessor ``prepare`` would fit on ``frame(task)``, built directly (no profiling pass)."""
    classes = {"binary": [0, 1], "multiclass": sorted(GRADES), "regression": None}[task]
    return Preprocessor(
        features=[f"x{i}" for i in range(6)] + ["city", "signup"],
        categories={"city": CITIES},
        datetime=["signup"],
        target="y",
        task=task,
        classes=classes,
        weight="w" if weighted else None,
    )


def datasets(task: str, *, weighted: bool = False, rows: int = ROWS) -> dict:
    """Train (80%) and valid (20%) Ray Datasets of ``frame(task)``, held in the object store."""
    import ray.data

    df = frame(task, rows=rows, weighted=weighted)
    cut = int(0.8 * len(df))
    table = pa.Table.from_pandas(df, preserve_index=False)
    return {"train": ray.data.from_arrow(table.slice(0, cut)), "valid": ray.data.from_arrow(table.slice(cut))}


@pytest.fixture(scope="package", autouse=True)
def fast_train_controller():
    """Poll workers every 0.25 s instead of 2 s: shorter start/teardown and report draining."""
    old = os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S")
    os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.25"
    yield
    if old is None:
        os.environ.pop("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", None)
    else:
        os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = old


@pytest.fixture(scope="session")
def storage_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ray-train-storage")


@pytest.fixture(scope="session")
def trained(ray_session, storage_dir):
    """``trained(family, task, weighted=False, **train_config)``: a ``TrainResult``, trained once per key.

    ``trained.prefetch(cases)`` starts runs in the background, three at a time: most of a run's
    ~15 s is Ray Train starting processes and polling, which overlap well. Workers reserve 0.3 CPU
    so that three runs fit the 2-CPU session.
    """
    from concurrent.futures import ThreadPoolExecutor

    from app.config import TrainConfig
    from app.train import train

    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="train")
    futures: dict = {}

    def run(family: str, task: str, weighted: bool, overrides: dict):
        settings = {
            "num_boost_round": ROUNDS,
            "early_stopping_rounds": 10,
            "cpus_per_worker": 0.3,
            **overrides,
        }
        config = TrainConfig(family=family, storage_path=str(storage_dir), **settings)
        return train(
            datasets(task, weighted=weighted),
            config=config,
            preprocessor=preprocessor(task, weighted=weighted),
            num_rows=int(0.8 * ROWS),
        )

    def submit(family: str, task: str, *, weighted: bool = False, **overrides):
        key = (family, task, weighted, tuple(sorted(overrides.items())))
        if key not in futures:
            futures[key] = pool.submit(run, family, task, weighted, overrides)
        return futures[key]

    def get(family: str, task: str, *, weighted: bool = False, **overrides):
        return submit(family, task, weighted=weighted, **overrides).result()

    get.prefetch = lambda cases: [submit(f, t, **kw) for f, t, kw in cases]
    yield get
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def holdout():
    """``holdout(task)``: 1,000 fresh rows from the same generator (another seed)."""
    return lambda task, weighted=False: frame(task, rows=1000, seed=11, weighted=weighted)
