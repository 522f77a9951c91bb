"""Typed configuration for every stage, loaded from one YAML file with env overrides for endpoints.

``AppConfig.from_yaml(path)`` validates the file (unknown keys are errors) and names the file and the
field in every error; ``with_env_overrides`` applies ``RAY_ADDRESS``, ``AWS_*``, ``REDIS_URL`` and
``MLFLOW_TRACKING_URI`` so secrets and endpoints stay out of the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from app import learners
from app.redact import redact
from app.serve_config import MonitorConfig, ServeConfig
from app.serve_config import Section as _Section


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message names the file and field."""


class RayConfig(_Section):
    address: str | None = Field(None, description="Ray cluster address; None starts a local Ray.")
    num_cpus: int | None = Field(None, ge=1, description="CPUs for a local Ray (ignored when connecting).")
    num_gpus: int | None = Field(None, ge=0, description="GPUs for a local Ray (ignored when connecting).")


class S3Config(_Section):
    endpoint_url: str | None = Field(None, description="S3 endpoint override (MinIO, moto, on-prem S3).")
    region: str | None = Field(None, description="AWS region of the bucket.")
    anonymous: bool = Field(False, description="Read public buckets without credentials.")


class DataConfig(_Section):
    s3: S3Config = Field(default_factory=S3Config, description="How s3:// URIs are reached.")
    valid_fraction: float = Field(0.2, gt=0, lt=1, description="Share of rows in the validation split.")
    test_fraction: float = Field(0.0, ge=0, lt=1, description="Share of rows in the test split.")
    split_seed: int = Field(0, ge=0, description="Seed of the deterministic hash split.")
    max_categories: int = Field(
        256,
        ge=2,
        description="Levels kept per categorical column; rarer ones share the unknown bucket. A column with "
        "more is target- and frequency-encoded for XGBoost and LightGBM and keeps up to 10,000 levels for "
        "CatBoost (app.data.target_encoding).",
    )
    memory_limit_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest dataframe the Dask loader converts to in-memory arrays."
    )


class TrainConfig(_Section):
    family: str = Field(
        "xgboost",
        description="Model family: a registered learner (app.learners: xgboost, lightgbm, catboost).",
    )
    num_workers: int = Field(1, ge=1, description="Data-parallel Ray Train workers.")

    @field_validator("family")
    @classmethod
    def _registered_family(cls, value: str) -> str:
        return _check_families([value])[0]

    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs reserved per worker.")
    use_gpu: bool = Field(False, description="Give each worker a GPU.")
    resources_per_worker: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources each worker also reserves (a node's `ray start --resources`), "
        "to pin workers to the nodes that have them.",
    )
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK",
        description="How the workers spread over nodes (Ray placement group strategy): PACK fills a node "
        "first; SPREAD puts them on different nodes when it can and shares one when a node is lost.",
    )
    num_boost_round: int = Field(200, ge=1, description="Boosting rounds before early stopping.")
    early_stopping_rounds: int | None = Field(
        20, ge=1, description="Stop after this many rounds without gain."
    )
    checkpoint_every: int = Field(50, ge=1, description="Rounds between checkpoints and reports.")
    max_failures: int = Field(2, ge=0, description="Worker failures the run survives by restoring.")
    params: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="Library hyperparameters passed through as they are."
    )
    objective: str | None = Field(None, description="Library objective; None picks the task's default.")
    metrics: list[str] | None = Field(
        None,
        description="Validation metrics (logloss, auc, mlogloss, accuracy, rmse or a library name); the "
        "first drives early stopping. None picks the task's defaults.",
    )
    threads_per_worker: int | None = Field(
        None, ge=1, description="Library threads per worker; None uses the worker's CPU share, at least 1."
    )
    report_every_s: float | None = Field(
        60.0, gt=0, description="Also report and checkpoint once this many seconds passed since the last one."
    )
    poll_interval_s: float | None = Field(
        0.5,
        gt=0,
        description="How often Ray Train's controller polls the workers (RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, "
        "set for the run unless the environment sets it); it drains one report per poll and run start and "
        "teardown wait on it. None keeps Ray's 2 s.",
    )
    min_report_interval_s: float | None = Field(
        None,
        ge=0,
        description="Fewest seconds between reports; None: the controller's poll interval (reports more "
        "frequent than it drains them stall the workers).",
    )
    memory_budget_bytes: int | None = Field(
        None,
        gt=0,
        description="Largest training shard (float32 features) a worker holds in memory; XGBoost streams a "
        "larger one through external memory. None: a quarter of this node's memory.",
    )
    batch_rows: int | None = Field(
        None, ge=1, description="Rows per batch streamed into each worker; None keeps Ray Data's blocks."
    )
    storage_path: str | None = Field(
        None,
        description="Ray Train storage for checkpoints (local directory or s3://); None: the output dir.",
    )


class SearchConfig(_Section):
    """How a search runs: trials, scheduler and searcher, budget, ensemble, refit, cross-validation.

    The one source of the search's defaults: ``app.search.RayTuneSettings`` (the guide's name) is this
    section plus where Ray runs, and ``automl fit`` / ``jobs/automl.py`` override it field by field.
    """

    num_samples: int | None = Field(
        None,
        ge=1,
        description="Trials to run (fewer if the time budget ends first); None: with time_budget_s as many "
        "as the budget allows (the search improves the best model until the deadline), else 30.",
    )
    max_concurrent_trials: int | None = Field(
        None, ge=1, description="Trials at once; None = CPUs / trial CPUs."
    )
    scheduler: Literal["asha", "fifo"] = Field("asha", description="ASHA stops bad trials early; FIFO never.")
    search_algorithm: Literal["optuna", "random"] = Field("optuna", description="TPE (Optuna) or random.")
    time_budget_s: float | None = Field(None, gt=0, description="Wall-clock budget of the whole fit.")
    metric: str | None = Field(None, description="Validation metric; None = logloss / mlogloss / rmse.")
    mode: Literal["min", "max"] | None = Field(None, description="Metric direction; None infers it.")
    storage_path: str | None = Field(None, description="Where Tune keeps trials (local or s3://).")
    families: list[str] | None = Field(
        None, description="Model families to search (registered learners); None: every registered one."
    )
    max_rounds: int | None = Field(
        None,
        ge=10,
        description="Boosting rounds a trial may use; None: sized from the training rows (1,000 up to "
        "10,000 rows, 4,000 at 10M), a bound early stopping and the time budget reach first.",
    )
    report_every: int = Field(
        10,
        ge=1,
        description="Rounds between reports: a trial reports at multiples of it that reach an ASHA rung "
        "(grace_period x report_every x reduction_factor^k rounds) or come a second after its last report.",
    )
    early_stopping_rounds: int = Field(30, ge=1, description="Rounds without gain that end a trial.")
    grace_period: int = Field(2, ge=1, description="ASHA: reports before a trial may be stopped.")
    reduction_factor: float = Field(3, gt=1, description="ASHA: keep 1/reduction_factor at each rung.")
    family_fairness: bool = Field(
        False,
        description="ASHA judges a trial only against its own family's trials, and the searcher keeps a "
        "share of trials for every family until its best finished trial is worse than the leader's third "
        "best (app.search.fairness). Off until bench/quality.py shows it wins over seeds.",
    )
    portfolio: int | None = Field(
        None,
        ge=0,
        description="Points of the learned portfolio (app.search.portfolio: AutoGluon's zeroshot "
        "configurations, best first) that Optuna evaluates after every family's defaults, before it "
        "samples on its own; None: all of them; 0: none. A search bounded by num_samples gives the defaults "
        "and these points at most half of its trials.",
    )
    cpus_per_trial: float = Field(1.0, gt=0, description="CPUs reserved by a trial.")
    ensemble_size: int = Field(5, ge=0, description="Top models the ensemble may draw from (0: none).")
    seed: int = Field(0, ge=0, description="Seed of the searcher.")
    refit: bool = Field(
        True,
        description="After the search, train the chosen model (each ensemble member) again on train + "
        "valid with its trial's best round count. Cheap in process (one trial's rounds on a little more "
        "data); over in_memory_limit_bytes each member is one more Ray Train run, which pays Ray Train's "
        "start-up. Validation scores stay those measured before the refit.",
    )
    cv_folds: int | None = Field(
        None,
        ge=0,
        description="Cross-validation after the search: the best cv_top_k trials are cross-validated on "
        "train + valid and the model and ensemble weights chosen on their out-of-fold predictions, then "
        "bagged (see bagging) or refit on train + valid. None: 5 folds when trials train in process on at "
        "most 10,000 train + valid rows (and refit is on), else 0; 0: off (choose on the validation "
        "rows); 2 or more: that many folds (needs refit).",
    )
    cv_top_k: int = Field(
        8, ge=1, description="Finished trials with distinct configurations, best first, to cross-validate."
    )
    bagging: bool = Field(
        True,
        description="When cross-validation ran, the chosen model (each ensemble member) is its folds' "
        "models averaged, a bag, instead of a refit on train + valid: every row trained all but one of "
        "them, and the out-of-fold scores that chose the model describe the bag itself. Serving predicts "
        "with every fold's model.",
    )
    row_ladder: bool | None = Field(
        None,
        description="Rows as a resource of the search (app.search.ladder): new configurations train on a "
        "sample of first_rung_rows training rows, and one climbs to 4x the rows while it stays in the best "
        "quarter of its rung, up to every row; the validation rows are the same on every rung. None: on "
        "from 500,000 training rows; true: on whenever the rows make two rungs; false: off.",
    )
    first_rung_rows: int = Field(
        10_000, ge=100, description="Training rows of the row ladder's first rung (see row_ladder)."
    )
    in_memory_limit_bytes: int = Field(
        2 * 1024**3,
        gt=0,
        description="Largest training matrix trials share in memory; above it each "
        "trial trains on Ray Train from the streaming dataset.",
    )

    @field_validator("families")
    @classmethod
    def _some_families(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("families must name at least one model family")
        return None if value is None else _check_families(list(dict.fromkeys(value)))

    @field_validator("cv_folds")
    @classmethod
    def _cv_folds(cls, value: int | None) -> int | None:
        if value == 1:
            raise ValueError(
                "cv_folds=1 is no cross-validation: use None (auto), 0 (off) or at least 2 folds"
            )
        return value

    @model_validator(mode="after")
    def _cv_needs_refit(self) -> SearchConfig:
        if self.cv_folds and not self.refit:
            raise ValueError(
                f"cv_folds={self.cv_folds} needs refit=True: the model chosen by cross-validation is trained "
                "on train + valid after it (set cv_folds=0 to keep the searched model)"
            )
        return self


class TrackingConfig(_Section):
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; None uses a local store.")
    experiment_name: str = Field("automl", description="MLflow experiment.")
    artifact_location: str | None = Field(None, description="Artifact root (local path or s3://).")
    registered_model_name: str | None = Field(
        None, description="Registry name the final model is registered under; None: do not register."
    )
    promotion_margin: float = Field(
        0.0,
        ge=0,
        description="How much a challenger must beat the champion by, on the same holdout data, to be "
        "promoted (in the metric's units).",
    )
    connect_timeout_s: float = Field(
        3.0,
        gt=0,
        description="Seconds the tracking server's health check may take (when a run starts, and before a "
        "call after a quiet spell); past that the run logs to RUN_DIR/mlruns-pending/ (`automl track sync`).",
    )


class AppConfig(_Section):
    """All settings of one deployment, one section per stage."""

    ray: RayConfig = Field(default_factory=RayConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

    @classmethod
    def load(
        cls, path: str | os.PathLike | None = None, *, env: Mapping[str, str] | None = None
    ) -> AppConfig:
        """What a command runs with: the file at ``path`` when one is given (``--config``), else the
        defaults; the environment's endpoints override either.

        Example:
            >>> AppConfig.load(None, env={"RAY_ADDRESS": "head:6380"}).ray.address
            'head:6380'
        """
        return cls.from_yaml(path, env=env) if path else cls.from_dict({}, env=env)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, *, env: Mapping[str, str] | None = None) -> AppConfig:
        """Read and validate a YAML file, then apply env overrides (``os.environ`` unless given).

        Example:
            >>> cfg = AppConfig.from_yaml("automl.yaml")  # doctest: +SKIP
            >>> cfg.train.num_workers  # doctest: +SKIP
            2
        """
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(raw).__name__}")
        return cls.from_dict(raw, source=str(path), env=env)

    @classmethod
    def from_dict(
        cls, raw: Mapping, *, source: str = "<config>", env: Mapping[str, str] | None = None
    ) -> AppConfig:
        try:
            cfg = cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(describe(exc, source)) from None
        return cfg.with_env_overrides(os.environ if env is None else env)

    def with_env_overrides(self, env: Mapping[str, str]) -> AppConfig:
        """A copy with endpoints taken from the environment where it sets them."""
        cfg = self.model_copy(deep=True)
        if env.get("RAY_ADDRESS"):
            cfg.ray.address = env["RAY_ADDRESS"]
        if env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"):
            cfg.data.s3.endpoint_url = env.get("AWS_ENDPOINT_URL_S3") or env["AWS_ENDPOINT_URL"]
        if env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"):
            cfg.data.s3.region = env.get("AWS_REGION") or env["AWS_DEFAULT_REGION"]
        if env.get("REDIS_URL"):
            cfg.serve.redis_url = env["REDIS_URL"]
        if env.get("MLFLOW_TRACKING_URI"):
            cfg.tracking.tracking_uri = env["MLFLOW_TRACKING_URI"]
        return cfg


def _check_families(families: list[str]) -> list[str]:
    """``families`` if each is a registered learner, else an error naming the unknown ones and the choices."""
    missing = learners.unknown(families)
    if missing:
        names = ", ".join(repr(m) for m in missing)
        raise ValueError(f"unknown model family {names}; choose one of {', '.join(learners.names())}")
    return families


def describe(exc: ValidationError, source: str) -> str:
    """A validation error as the user reads it: ``source``, then one line per bad key with its value."""
    lines = [f"{source}: {exc.error_count()} invalid setting(s)"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")  # pydantic's prefix for our own checks
        if err["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown key")
        elif not where:  # a check across settings: its message names them, the input is the whole section
            lines.append(f"  {message}")
        else:
            shown = redact(err.get("input"), key=str(err["loc"][-1]))
            lines.append(f"  {where}: {message} (got {shown!r})")  # no password in the message
    return "\n".join(lines)
