"""The data stage end to end: spec -> validated, split, profiled dataset and a fitted preprocessor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.data.encode import Preprocessor, Task
from app.data.io import DatasetInfo, inspect, load
from app.data.spec import DatasetSpec
from app.data.split import Splits, split
from app.data.stats import DatasetProfile, profile
from app.data.target_encoding import add_folds, fit_encodings, high_cardinality

if TYPE_CHECKING:
    import pandas as pd
    import ray.data

    from app.config import DataConfig


@dataclass(frozen=True)
class PreparedData:
    """What training needs: lazy splits, the training profile and the preprocessor fitted on it."""

    info: DatasetInfo
    splits: Splits
    profile: DatasetProfile
    preprocessor: Preprocessor

    def null_target_rows(self) -> dict[str, int | str | None]:
        """Rows without a target, which training skips: ``rows`` of ``of``, counted in every file's footer
        (Parquet) or else in the training split as it was profiled (``counted_in`` says which)."""
        if self.info.target_nulls is not None:
            return {"rows": self.info.target_nulls, "of": self.info.num_rows, "counted_in": "all rows"}
        column = self.profile.columns.get(self.info.spec.target)
        nulls = column.nulls if column is not None else None
        return {"rows": nulls, "of": self.profile.num_rows, "counted_in": "the training split"}

    def save(self, run_dir: str | Path) -> dict[str, Path]:
        """Write ``profile.json`` and ``preprocessor.json`` into the run directory."""
        run_dir = Path(run_dir)
        return {
            "profile": self.profile.save(run_dir / "profile.json"),
            "preprocessor": self.preprocessor.save(run_dir / "preprocessor.json"),
        }


def prepare(
    spec: DatasetSpec,
    *,
    config: DataConfig | None = None,
    task: Task | None = None,
) -> PreparedData:
    """Validate, split and profile a dataset; fit the preprocessor on the training split only.

    Categorical columns with more than ``config.max_categories`` levels are target- and frequency-encoded
    (``app.data.target_encoding``): the training split then carries each row's ``__fold__``, and one more
    pass over it gathers the levels' statistics.

    Example:
        >>> data = prepare(DatasetSpec(uri="s3://bucket/train/", target="y"))  # doctest: +SKIP
        >>> data.preprocessor.task  # doctest: +SKIP
        'binary'
    """
    from app.config import DataConfig

    config = config or DataConfig()
    info = inspect(spec)
    splits = _split(load(info), spec, config)
    prof = profile(
        splits.train,
        numeric=info.numeric,
        categorical=info.categorical,
        datetime=info.datetime,
        target=spec.target,
        top_k=config.max_categories,
        schema=info.schema,
    )
    pre = Preprocessor.fit(
        prof,
        features=info.features,
        categorical=info.categorical,
        datetime=info.datetime,
        target=spec.target,
        task=task,
        weight=spec.weight_column,
        max_categories=config.max_categories,
    )
    encoded = high_cardinality(prof, info.categorical, over=config.max_categories)
    if encoded and pre.task is not None:
        key_columns = [spec.id_column] if spec.id_column else None
        train = add_folds(splits.train, seed=config.split_seed, key_columns=key_columns)
        splits = Splits(train=train, valid=splits.valid, test=splits.test)
        pre = pre.with_encodings(fit_encodings(train, pre, encoded))
    return PreparedData(info=info, splits=splits, profile=prof, preprocessor=pre)


def holdout_rows(spec: DatasetSpec, *, config: DataConfig, max_rows: int = 100_000) -> pd.DataFrame:
    """The test split of ``spec`` as ``prepare`` draws it with ``config`` (rows no fit with that config
    trains on), read whole up to ``max_rows`` — for scoring models against each other on the same rows."""
    if not config.test_fraction:
        raise ValueError(f"{spec.uri}: data.test_fraction is 0, so there is no test split to score on")
    test = _split(load(inspect(spec)), spec, config).test
    return test.limit(max_rows).to_pandas()


def _split(ds: ray.data.Dataset, spec: DatasetSpec, config: DataConfig) -> Splits:
    return split(
        ds,
        valid_fraction=config.valid_fraction,
        test_fraction=config.test_fraction,
        seed=config.split_seed,
        key_columns=[spec.id_column] if spec.id_column else None,
    )
