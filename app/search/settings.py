"""Settings of one search: the guide's ``RayTuneSettings`` surface, validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.train.common import FAMILIES


class RayTuneSettings(BaseModel):
    """How a search runs: where, how many trials, which scheduler and searcher, for how long.

    Example:
        >>> s = RayTuneSettings(num_samples=40, scheduler="asha", time_budget_s=300)
        >>> s.families
        ['xgboost', 'lightgbm', 'catboost']
    """

    model_config = ConfigDict(extra="forbid")

    num_cpus: int | None = Field(None, description="CPUs for a local Ray; -1 or None uses all.")
    num_gpus: int | None = Field(None, ge=0, description="GPUs for a local Ray.")
    ray_address: str | None = Field(None, description="Cluster to connect to; None starts a local Ray.")
    num_samples: int = Field(30, ge=1, description="Trials to run (fewer if the time budget ends first).")
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="Trials at once; None = CPUs / trial CPUs."
    )
    scheduler: Literal["asha", "fifo"] = Field("asha", description="ASHA stops bad trials early; FIFO never.")
    search_algorithm: Literal["optuna", "random"] = Field("optuna", description="TPE (Optuna) or random.")
    time_budget_s: float | None = Field(None, gt=0, description="Wall-clock budget of the whole fit.")
    metric: str | None = Field(None, description="Validation metric; None = logloss / mlogloss / rmse.")
    mode: Literal["min", "max"] | None = Field(None, description="Metric direction; None infers it.")
    storage_path: str | None = Field(None, description="Where Tune keeps trials (local or s3://).")
    families: list[str] = Field(default_factory=lambda: list(FAMILIES), description="Model families.")
    max_rounds: int = Field(300, ge=10, description="Boosting rounds a trial may use.")
    report_every: int = Field(
        10,
        ge=1,
        description="Rounds between reports: a trial reports at multiples of it that reach an ASHA rung "
        "(grace_period x report_every x reduction_factor^k rounds) or come a second after its last report.",
    )
    early_stopping_rounds: int = Field(30, ge=1, description="Rounds without gain that end a trial.")
    grace_period: int = Field(2, ge=1, description="ASHA: reports before a trial may be stopped.")
    reduction_factor: float = Field(3, gt=1, description="ASHA: keep 1/reduction_factor at each rung.")
    cpus_per_trial: float = Field(1.0, gt=0, description="CPUs reserved by a trial.")
    ensemble_size: int = Field(5, ge=0, description="Top models the ensemble may draw from (0: none).")
    seed: int = Field(0, ge=0, description="Seed of the searcher.")
    refit: bool = Field(
        True,
        description="After the search, train the chosen model (each ensemble member) again on train + "
        "valid with its trial's best round count. Cheap in process (one trial's rounds on 1.25x the rows, "
        "well under a second per member on small data); over in_memory_limit_bytes each member is one more "
        "Ray Train run (~10-15 s of start-up). Validation scores stay those measured before the refit.",
    )
    cv_folds: int | None = Field(
        None,
        ge=0,
        description="Cross-validation after the search: the best cv_top_k trials are cross-validated on "
        "train + valid and the model and ensemble weights chosen on their out-of-fold predictions, then "
        "refit on train + valid. None: 5 folds when trials train in process on at most 10,000 train + "
        "valid rows (and refit is on), else 0; 0: off (choose on the validation rows); 2 or more: that "
        "many folds (needs refit).",
    )
    cv_top_k: int = Field(
        8, ge=1, description="Finished trials with distinct configurations, best first, to cross-validate."
    )
    in_memory_limit_bytes: int = Field(
        2 * 1024**3,
        gt=0,
        description="Largest training matrix trials share in memory; above it each "
        "trial trains on Ray Train from the streaming dataset.",
    )

    @field_validator("families")
    @classmethod
    def _known_families(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(FAMILIES))
        if unknown or not value:
            raise ValueError(f"families must be a non-empty subset of {list(FAMILIES)}; unknown: {unknown}")
        return list(dict.fromkeys(value))

    @field_validator("cv_folds")
    @classmethod
    def _cv_folds(cls, value: int | None) -> int | None:
        if value == 1:
            raise ValueError(
                "cv_folds=1 is no cross-validation: use None (auto), 0 (off) or at least 2 folds"
            )
        return value

    @model_validator(mode="after")
    def _cv_needs_refit(self) -> RayTuneSettings:
        if self.cv_folds and not self.refit:
            raise ValueError(
                f"cv_folds={self.cv_folds} needs refit=True: the model chosen by cross-validation is trained "
                "on train + valid after it (set cv_folds=0 to keep the searched model)"
            )
        return self
