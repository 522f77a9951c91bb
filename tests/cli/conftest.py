"""Helpers for driving the ``automl`` command as a user would: in process through Typer where no signal
is needed, small model directories trained without Ray, and a snapshot of what is on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import app
from app.data.encode import Preprocessor
from app.search.inprocess import TrialData, train_local
from app.train import save_model
from app.train.ensemble import save_ensemble

FEATURES = ["x0", "x1", "x2"]


def automl(*args: str):
    """``automl ARGS`` in this process; the result has ``exit_code``, ``stdout`` and ``stderr``."""
    return CliRunner().invoke(app, [str(a) for a in args])


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: its content hash and modification time."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def features_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)


def _trial_data(n: int = 300) -> TrialData:
    x = features_frame(n).to_numpy(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    pre = Preprocessor(
        features=FEATURES, categories={}, datetime=[], target="y", task="binary", classes=[0, 1]
    )
    cut = int(0.8 * n)
    return TrialData(x[:cut], y[:cut], None, x[cut:], y[cut:], None, pre.to_dict())


@pytest.fixture
def model_dir(tmp_path) -> Callable[[str], Path]:
    """``model_dir(family)``: a small saved binary model (trained in process, a few rounds)."""
    data = _trial_data()

    def make(family: str, name: str | None = None) -> Path:
        result = train_local(family, {}, data, num_boost_round=5, early_stopping_rounds=None)
        return save_model(result, tmp_path / (name or f"model-{family}"))

    return make


@pytest.fixture
def ensemble_dir(tmp_path, model_dir) -> Path:
    """An ensemble directory of an XGBoost and a LightGBM member."""
    out = tmp_path / "ensemble"
    members = []
    for family in ("xgboost", "lightgbm"):
        src = model_dir(family)
        dst = out / "members" / family
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dst)
        members.append(dst)
    return save_ensemble(members, np.array([0.5, 0.5]), out, info={"metric": "logloss", "task": "binary"})
