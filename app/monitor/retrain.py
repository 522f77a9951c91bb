"""The retraining trigger: drift or degradation that persists for ``after_checks`` checks submits one
retraining Ray job (``jobs/retrain.py``) — at most one at a time, none within the cool-down — and every
decision is kept with its reason, values and job id."""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from app.serve_config import RetrainConfig

RUNNING = ("PENDING", "RUNNING")


@dataclass(frozen=True)
class Decision:
    decision: str  # alert_only | waiting | running | cooldown | submitted | failed
    reason: str
    time: float
    job_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Retrainer:
    """Decides, per monitor check, whether to submit a retraining job.

    ``submit(entrypoint, metadata)`` returns a job id and ``status(job_id)`` a Ray job status; both default
    to Ray's ``JobSubmissionClient``."""

    def __init__(
        self,
        config: RetrainConfig,
        *,
        model: str,
        registered_name: str | None,
        submit: Callable[[str, dict[str, str]], str] | None = None,
        status: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config, self.model, self.clock = config, model, clock
        self.registered_name = config.registered_model_name or registered_name
        self._submit, self._status = submit, status
        self.streak = 0
        self.job_id: str | None = None
        self.submitted_at: float | None = None

    def decide(self, result: dict[str, Any]) -> Decision | None:
        """The decision for one check's ``result`` (None when nothing is wrong)."""
        reason = _reason(result)
        self.streak = self.streak + 1 if reason else 0
        if not reason:
            return None
        now = self.clock()
        if not self.config.enabled:
            return Decision("alert_only", reason, now)
        if self.streak < self.config.after_checks:
            return Decision("waiting", f"{reason} ({self.streak} of {self.config.after_checks} checks)", now)
        if self.job_id is not None and self.status(self.job_id) in RUNNING:
            return Decision("running", reason, now, self.job_id)
        if self.submitted_at is not None and now - self.submitted_at < self.config.cooldown_s:
            return Decision("cooldown", reason, now, self.job_id)
        try:
            job_id = self.submit(
                self.entrypoint(reason), {"stage": "retrain", "model": self.model, "reason": reason}
            )
        except Exception as exc:  # noqa: BLE001 - the decision records why; the next check tries again
            return Decision("failed", f"{reason}; submitting failed: {exc}", now)
        self.job_id, self.submitted_at, self.streak = job_id, now, 0
        return Decision("submitted", reason, now, job_id)

    def entrypoint(self, reason: str) -> str:
        cfg = self.config
        if not cfg.data or not cfg.target or not self.registered_name:
            raise ValueError("retrain needs monitor.retrain.data, .target and a registered model name")
        args = [
            *shlex.split(cfg.python), _script(cfg.working_dir), cfg.data, "--target", cfg.target,
            "--model-name", self.registered_name, "--time-budget", str(cfg.time_budget_s),
            "--margin", str(cfg.margin), "--out", cfg.out, "--reason", reason,
        ]  # fmt: skip
        if cfg.config:
            args += ["--config", cfg.config]
        return shlex.join(args)

    def submit(self, entrypoint: str, metadata: dict[str, str]) -> str:
        if self._submit is not None:
            return self._submit(entrypoint, metadata)
        submission_id = f"retrain-{_slug(self.model)}-{int(self.clock())}"  # the stage, in the job's id
        return self._client().submit_job(
            entrypoint=entrypoint,
            runtime_env=self.runtime_env(),
            metadata=metadata,
            submission_id=submission_id,
        )

    def runtime_env(self) -> dict[str, Any]:
        """The job's runtime_env: the uploaded working dir (minus its .gitignore and .rayignore), the
        registry's URI, and — when the job starts through ``uv run`` — jobs/runtime_env.yaml's variables,
        as for every job (README: Jobs on a Ray cluster)."""
        cfg = self.config
        env: dict[str, str] = {}
        if cfg.python.split()[0] == "uv" and cfg.working_dir:
            shared = Path(cfg.working_dir) / "jobs" / "runtime_env.yaml"
            if shared.is_file():
                env.update(yaml.safe_load(shared.read_text()).get("env_vars") or {})
        if cfg.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = cfg.tracking_uri
        runtime_env: dict[str, Any] = {"env_vars": env} if env else {}
        if cfg.working_dir:
            runtime_env["working_dir"] = cfg.working_dir
        return runtime_env

    def status(self, job_id: str) -> str:
        if self._status is not None:
            return self._status(job_id)
        return str(self._client().get_job_status(job_id).value)

    def _client(self):
        from ray.job_submission import JobSubmissionClient

        address = (
            self.config.job_address or os.environ.get("RAY_DASHBOARD_ADDRESS") or "http://127.0.0.1:8265"
        )
        return JobSubmissionClient(address)


def _slug(model: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in model)


def _script(working_dir: str | None) -> str:
    """``jobs/retrain.py`` in the uploaded working dir; without one, where this project is installed (a
    cluster whose nodes share one image or setup has it at the same path everywhere)."""
    installed = Path(__file__).resolve().parents[2] / "jobs" / "retrain.py"
    return "jobs/retrain.py" if working_dir or not installed.is_file() else str(installed)


def _reason(result: dict[str, Any]) -> str:
    parts = [
        f"{name} drifted (PSI {f['psi']:.3f}" + (f", KS {f['ks']:.3f})" if f.get("ks") is not None else ")")
        for name, f in result.get("features", {}).items()
        if f.get("drifted")
    ]
    pred = result.get("prediction_drift", {})
    if pred.get("drifted"):
        parts.append(f"predictions drifted (PSI {pred['psi']:.3f})")
    perf = result.get("performance", {})
    if perf.get("degraded"):
        parts.append(f"{perf['metric']} {perf['score']:.4g} vs baseline {perf['baseline']:.4g}")
    return "; ".join(parts)
