"""The online sections of the configuration: ``ServeConfig`` (the ``args`` of serve_config.yaml) with its
``MonitorConfig`` and ``RetrainConfig``, and ``Section``, the base every config section shares.

``app.config.AppConfig`` gathers these with the offline stages; they live apart so that each file reads in
one sitting, and below ``app.config`` so that the serving and monitoring code need not import the rest.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """A config section: unknown keys are errors and assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RetrainConfig(Section):
    """When the monitor submits a retraining job, and what that job fits (``args.monitor.retrain``)."""

    enabled: bool = Field(
        False, description="Submit retraining jobs; false: drift and degradation only alert."
    )
    data: str | None = Field(None, description="Fresh labelled data the job fits on (path or s3:// URI).")
    target: str | None = Field(None, description="Target column of that data.")
    after_checks: int = Field(
        3, ge=1, description="Consecutive checks with drift or degradation before a job is submitted."
    )
    cooldown_s: float = Field(3600.0, ge=0, description="Seconds after a submission before the next one.")
    job_address: str | None = Field(
        None,
        description="Ray dashboard (job API) URL; None: RAY_DASHBOARD_ADDRESS, else http://127.0.0.1:8265.",
    )
    working_dir: str | None = Field(
        None, description="Directory uploaded as the job's working_dir (the project); None: nodes have it."
    )
    registered_model_name: str | None = Field(
        None, description="Registry name the challenger is registered under; None: the served model's."
    )
    tracking_uri: str | None = Field(
        None, description="MLflow server of the registry; None: MLFLOW_TRACKING_URI."
    )
    time_budget_s: float = Field(300.0, gt=0, description="Search budget of the retraining fit.")
    margin: float = Field(0.0, ge=0, description="How much better than the champion the challenger must be.")
    out: str = Field("runs/retrain", description="Run folder of the retraining fit on the cluster.")
    python: str = Field(
        "python",
        min_length=1,
        description="How the job starts Python: `python` (the nodes have the project's environment) or "
        "`uv run --frozen --extra all python` (built from the uploaded uv.lock; needs working_dir).",
    )
    config: str | None = Field(
        None, description="AppConfig YAML the job fits with (search, data, tracking); readable by the job."
    )


class MonitorConfig(Section):
    """Drift and performance monitoring of a served model (``args.monitor`` in serve_config.yaml)."""

    enabled: bool = Field(True, description="Send samples of served rows to the model's monitor actor.")
    sample_rate: float = Field(
        0.1, ge=0, le=1, description="Share of served rows (with their predictions) sent to the monitor."
    )
    window_size: int = Field(10_000, ge=100, description="Recent rows compared with the reference profile.")
    min_window: int = Field(500, ge=1, description="Rows a window needs before it can count as drift.")
    psi_threshold: float = Field(0.2, gt=0, description="Population stability index that counts as drift.")
    ks_threshold: float = Field(0.2, gt=0, le=1, description="KS statistic that counts as drift (numbers).")
    label_window: int = Field(2_000, ge=10, description="Recent labelled predictions the rolling score uses.")
    min_labels: int = Field(100, ge=1, description="Labels needed before degradation can be flagged.")
    degradation_tolerance: float = Field(
        0.05, ge=0, description="How much worse than the training baseline the rolling score may get."
    )
    check_every_s: float = Field(30.0, gt=0, description="Seconds between the monitor's drift checks.")
    reference: str | None = Field(
        None, description="profile.json of the training data; None: the one beside the model directory."
    )
    state_path: str | None = Field(
        None,
        description="Where the monitor checkpoints its windows (a directory, local or s3://); None: "
        "MODEL_DIR/../monitor (local models) or none.",
    )
    retrain: RetrainConfig = Field(default_factory=RetrainConfig, description="The retraining trigger.")


class ServeConfig(Section):
    """The online prediction service: what ``app.serve:build_app`` takes as ``args`` in serve_config.yaml."""

    model: str | None = Field(
        None,
        description="Model to serve: a directory written by `automl fit`/`automl train` (single model or "
        "ensemble) or a registry URI (models:/NAME@champion, models:/NAME/3).",
    )
    tracking_uri: str | None = Field(
        None, description="MLflow server that resolves a models:/ URI; None: MLFLOW_TRACKING_URI."
    )
    model_version: str | None = Field(
        None,
        description="Version label to report and key the cache by, instead of the registry version or the "
        "model directory's digest (the guide's model_id).",
    )
    model_poll_s: float | None = Field(
        30.0,
        gt=0,
        description="Seconds between checks of a models:/NAME@alias URI for a moved alias (hot update); "
        "None never polls (push a new model with `serve deploy` of a changed user_config instead).",
    )
    redis_url: str | None = Field(
        None,
        description="Redis prediction cache (redis://[:password@]host:port/db or rediss://); None keeps an "
        "in-process LRU cache per replica.",
    )
    cache_ttl_s: int = Field(300, ge=1, description="Seconds a cached prediction lives in Redis.")
    cache_max_rows: int = Field(
        256,
        ge=0,
        description="Requests with at most this many rows use the cache (larger batches skip it: hashing "
        "every row costs more than it saves); 0 turns caching off.",
    )
    lru_size: int = Field(
        100_000, ge=1, description="Rows the in-process cache keeps when there is no Redis."
    )
    redis_timeout_s: float = Field(
        0.02,
        gt=0,
        description="Longest a request waits for Redis; past it the rows count as misses and the request "
        "goes on. After a failure Redis is skipped for `redis_retry_s`.",
    )
    redis_retry_s: float = Field(1.0, gt=0, description="Seconds Redis is skipped after a failure.")
    max_rows: int = Field(10_000, ge=1, description="Most rows one request may send (413 beyond).")
    max_batch_size: int = Field(
        64, ge=1, description="Most concurrent requests whose rows are predicted in one model call."
    )
    batch_wait_timeout_s: float = Field(
        0.0,
        ge=0,
        description="Longest a request waits for others to share its model call; 0 takes the requests "
        "already queued (batches form under load, no request waits for one).",
    )
    monitor: MonitorConfig = Field(
        default_factory=MonitorConfig,
        description="Drift and performance monitoring: the share of rows sampled, windows, thresholds.",
    )
    api_key_env: str | None = Field(
        None,
        description="Name of an environment variable holding the API key; when set, requests need the "
        "header `X-API-Key` (or `Authorization: Bearer KEY`). The key itself is never in the YAML.",
    )
