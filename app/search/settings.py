"""Settings of one search: the guide's ``RayTuneSettings``, built from ``app.config.SearchConfig``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, field_validator

from app import learners as registry
from app.config import ConfigError, SearchConfig, describe
from app.search.spaces import default_rounds

if TYPE_CHECKING:
    from app.config import AppConfig

# Trials of a search without a time budget or num_samples.
DEFAULT_TRIALS = 30


class RayTuneSettings(SearchConfig):
    """How a search runs: ``SearchConfig`` (trials, scheduler, searcher, budget) plus where Ray runs.

    Example:
        >>> s = RayTuneSettings(num_samples=40, scheduler="asha", time_budget_s=300)
        >>> s.families
        ['xgboost', 'lightgbm', 'catboost']
    """

    num_cpus: int | None = Field(None, description="CPUs for a local Ray; -1 or None uses all.")
    num_gpus: int | None = Field(None, ge=0, description="GPUs for a local Ray.")
    ray_address: str | None = Field(None, description="Cluster to connect to; None starts a local Ray.")
    families: list[str] = Field(
        default_factory=lambda: list(registry.names()),
        description="Model families to search: registered learners (app.learners); default all.",
    )

    @field_validator("families", mode="before")
    @classmethod
    def _all_by_default(cls, value: list[str] | None) -> list[str]:
        """None: every registered learner (``SearchConfig`` checks the names)."""
        return list(registry.names()) if value is None else value

    @property
    def trials(self) -> int:
        """Tune's ``num_samples``: ``num_samples`` when set; else -1 (no bound: the time budget ends the
        search) with a time budget, and ``DEFAULT_TRIALS`` without one."""
        if self.num_samples is not None:
            return self.num_samples
        return -1 if self.time_budget_s is not None else DEFAULT_TRIALS

    def for_rows(self, n_rows: int) -> RayTuneSettings:
        """These settings with ``max_rounds`` decided for ``n_rows`` training rows when it is None."""
        if self.max_rounds is not None:
            return self
        return self.model_copy(update={"max_rounds": default_rounds(n_rows)})

    @classmethod
    def from_config(cls, config: AppConfig, **overrides: Any) -> RayTuneSettings:
        """``config.search`` with the cluster of ``config.ray``, then every override that is not None
        or an empty list (command-line options: an option left out keeps the file's value, or the default).

        Example:
            >>> from app.config import AppConfig
            >>> cfg = AppConfig.from_dict({"search": {"num_samples": 8}}, env={"RAY_ADDRESS": "head:6380"})
            >>> s = RayTuneSettings.from_config(cfg, scheduler="fifo", max_rounds=None)
            >>> (s.num_samples, s.scheduler, s.max_rounds, s.ray_address)
            (8, 'fifo', None, 'head:6380')
        """
        values: dict[str, Any] = {
            **config.search.model_dump(),
            "ray_address": config.ray.address,
            "num_cpus": config.ray.num_cpus,
            "num_gpus": config.ray.num_gpus,
        }
        values.update({k: v for k, v in overrides.items() if v is not None and v != []})
        try:
            return cls(**values)
        except ValidationError as exc:  # a bad option or file value: the setting's name, not pydantic's text
            raise ConfigError(
                describe(exc, "search settings (options over the config's search section)")
            ) from None
