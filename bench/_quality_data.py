"""Datasets of bench/quality.py and their one train/test split, written as Parquet for every system.

scikit-learn's bundled sets (shipped inside the package: no download) and generated ones
(bench/_quality_synth.py, bench/_quality_business.py), the latter built once per seed and kept as Parquet.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from _quality_business import ad_clicks, customer_churn, insurance_claims, merchant_fraud
from _quality_synth import (
    TARGET,
    cover_multiclass,
    synth_binary,
    synth_multiclass,
    synth_regression,
    wave_multiclass,
)

__all__ = ["DATASETS", "DEFAULT", "TARGET", "Dataset", "by_name", "load", "write_split"]


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # binary | multiclass | regression
    build: Callable[..., pd.DataFrame]  # build(seed=..., rows=...) for generated ones
    generated: bool = True
    about: str = ""


def _sklearn(name: str) -> Callable[..., pd.DataFrame]:
    def build(*, seed: int = 0, rows: int | None = None) -> pd.DataFrame:  # fixed data: seed, rows unused
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        frame = bunch.frame.rename(columns=lambda c: re.sub(r"[^0-9A-Za-z_]+", "_", str(c)).strip("_"))
        return frame.rename(columns={"target": TARGET})

    return build


DATASETS: list[Dataset] = [
    Dataset("breast_cancer", "binary", _sklearn("breast_cancer"), False, "569 rows, 30 numeric"),
    Dataset("wine", "multiclass", _sklearn("wine"), False, "178 rows, 13 numeric, 3 classes"),
    Dataset("digits", "multiclass", _sklearn("digits"), False, "1,797 rows, 64 pixels, 10 classes"),
    Dataset("diabetes", "regression", _sklearn("diabetes"), False, "442 rows, 10 numeric"),
    Dataset("synth_binary", "binary", synth_binary, about="20k rows, mixed types, ~7 % positives"),
    Dataset("synth_multiclass", "multiclass", synth_multiclass, about="15k rows, mixed types, 4 classes"),
    Dataset("synth_regression", "regression", synth_regression, about="15k rows, mixed types"),
    Dataset("merchant_fraud", "binary", merchant_fraud, about="200k rows, 5,000-level merchant, dates"),
    Dataset("cover_multiclass", "multiclass", cover_multiclass, about="120k rows, 54 features, 7 classes"),
    Dataset("customer_churn", "binary", customer_churn, about="60k rows, ~3 % churn, id columns"),
    Dataset("insurance_claims", "regression", insurance_claims, about="60k rows, heavy-tailed cost, id"),
    Dataset("ad_clicks", "binary", ad_clicks, about="400k rows, 10 mixed columns, 20,000-level publisher"),
    Dataset("wave_multiclass", "multiclass", wave_multiclass, about="150k rows, 48 numeric, 7 classes"),
]
# The full comparison: every dataset but wine (178 rows: a 45-row test split says little).
DEFAULT = [d.name for d in DATASETS if d.name != "wine"]


def by_name(name: str) -> Dataset:
    for dataset in DATASETS:
        if dataset.name == name:
            return dataset
    raise KeyError(f"unknown dataset {name!r}; choose from {', '.join(d.name for d in DATASETS)}")


def load(name: str, *, seed: int, cache: Path, rows: int | None = None) -> pd.DataFrame:
    """The dataset's frame; a generated one is built once and then read back from ``cache``.

    The file name carries the seed, the rows and a digest of the builder's source, so a changed
    builder writes a new file instead of reusing a stale one.
    """
    dataset = by_name(name)
    if not dataset.generated:
        return dataset.build()
    kwargs = {"seed": seed} | ({"rows": rows} if rows is not None else {})
    digest = hashlib.sha1(inspect.getsource(inspect.getmodule(dataset.build)).encode()).hexdigest()[:10]
    path = cache / f"{name}-seed{seed}-rows{rows or 'default'}-{digest}.parquet"
    if path.exists():
        return pd.read_parquet(path)
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    dataset.build(**kwargs).to_parquet(partial, index=False)
    partial.rename(path)  # a run killed mid-write leaves no half file to be read back later
    return pd.read_parquet(path)  # the first run sees the same frame (dtypes included) as later ones


def write_split(name: str, out: Path, seed: int) -> dict:
    """Build (or read back) ``name`` with ``seed`` and split it 75/25 with ``seed`` (stratified for
    classifiers). bench/quality.py passes one data seed for every system and search seed, so all of them
    train and are scored on the same rows."""
    from sklearn.model_selection import train_test_split

    task = by_name(name).task
    frame = load(name, seed=seed, cache=out / "datasets")
    train, test = train_test_split(
        frame,
        test_size=0.25,
        random_state=seed,
        stratify=frame[TARGET] if task != "regression" else None,
    )
    d = out / "splits" / name
    d.mkdir(parents=True, exist_ok=True)
    train.reset_index(drop=True).to_parquet(d / "train.parquet", index=False)
    test.reset_index(drop=True).to_parquet(d / "test.parquet", index=False)
    return {
        "name": name,
        "task": task,
        "train": d / "train.parquet",
        "test": d / "test.parquet",
        "rows": len(frame),
        "features": frame.shape[1] - 1,
    }
