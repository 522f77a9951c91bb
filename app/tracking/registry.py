"""The model registry: every fitted model a new version, the aliases ``champion`` and ``challenger``, a
promotion rule on the same holdout data recorded as version tags, and rollback to the previous champion.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.train.metrics import Metric, get_metric

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel


CHAMPION, CHALLENGER = "champion", "challenger"
PREVIOUS_CHAMPION = "previous_champion"


class ComparisonNeeded(ValueError):
    """``promote`` of a version against a champion with nothing to compare them on."""

    def __init__(self, name: str, version: str, champion: str) -> None:
        super().__init__(
            f"{name}: v{version} is compared with champion v{champion}: promote needs holdout_metric_fn or "
            "both candidate_value and champion_value"
        )
        self.name, self.version, self.champion = name, version, champion


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of ``promote``; the same facts are written as tags on the candidate version."""

    name: str
    promoted: bool
    candidate_version: str
    champion_version: str | None
    metric: str
    candidate_value: float | None
    champion_value: float | None
    margin: float
    mode: str
    reason: str


@dataclass(frozen=True)
class RollbackResult:
    name: str
    from_version: str
    to_version: str


class ModelRegistry:
    """Registry operations through one ``MlflowClient`` (the tracker's, or one built for ``tracking_uri``).

    Example:
        >>> reg = ModelRegistry(tracking_uri="http://mlflow:5000")  # doctest: +SKIP
        >>> reg.promote("churn", candidate_value=0.91, champion_value=0.90, margin=0.005)  # doctest: +SKIP
        PromotionDecision(name='churn', promoted=True, ...)
        >>> reg.rollback("churn")  # doctest: +SKIP
    """

    def __init__(self, client: MlflowClient | None = None, *, tracking_uri: str | None = None) -> None:
        if client is None:
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.client = client

    def register(
        self,
        name: str,
        model_uri: str,
        *,
        run_id: str | None = None,
        model_id: str | None = None,
        tags: dict[str, Any] | None = None,
        by: str | None = None,
    ) -> ModelVersion:
        """A new version of ``name`` from ``model_uri``, aliased ``challenger``; the first version of a
        model (no champion yet) also becomes ``champion``."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if "ALREADY_EXISTS" not in str(exc.error_code):
                raise
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        # A local (SQL) registry resolves "models:/<id>" through the process-wide tracking URI, not
        # this client's (mlflow's own TODO in sqlalchemy_store.create_model_version): point it here.
        with _use_tracking_uri(self.client.tracking_uri):
            version = self.client.create_model_version(
                name, source=model_uri, run_id=run_id, model_id=model_id, tags=_strings(tags or {})
            )
        self.client.set_registered_model_alias(name, CHALLENGER, version.version)
        if self.version_for(name, CHAMPION) is None:
            self.promote(name, version=version.version, by=by)
        return self.client.get_model_version(name, version.version)

    def version_for(self, name: str, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            # MLflow 3.17 answers INVALID_PARAMETER_VALUE "alias ... not found" for an unset alias, and
            # RESOURCE_DOES_NOT_EXIST for a model that is not registered at all.
            missing_alias = exc.error_code == "INVALID_PARAMETER_VALUE" and "not found" in exc.message
            if missing_alias or exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def download_uri(self, model_uri: str) -> str:
        """Where the artifacts of ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/<model id>``
        are stored."""
        from app.train.load import resolve_model_uri

        return resolve_model_uri(self.client, model_uri).download_uri

    def set_alias(self, name: str, alias: str, version: str | int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def versions(self, name: str) -> list[ModelVersion]:
        """All versions of ``name``, oldest first."""
        found = self.client.search_model_versions(f"name = '{name}'")
        return sorted(found, key=lambda v: int(v.version))

    def models(self) -> list[RegisteredModel]:
        return list(self.client.search_registered_models())

    def promote(
        self,
        name: str,
        *,
        version: str | int | None = None,
        metric: str = "score",
        candidate_value: float | None = None,
        champion_value: float | None = None,
        holdout_metric_fn: Callable[[str], float] | None = None,
        margin: float = 0.0,
        mode: str | None = None,
        by: str | None = None,
    ) -> PromotionDecision:
        """Make ``version`` (default: the ``challenger``) champion if it beats the champion by ``margin``.

        The two values come from ``holdout_metric_fn(model_uri)`` evaluated on the same holdout data for
        both versions, or are given as ``candidate_value``/``champion_value``. With no champion the
        candidate is promoted outright. The decision (who, what, why, both values, the previous
        champion) is written as tags on the candidate version either way. ``mode`` (max/min) is the
        metric's own direction (``app.train.metrics.get_metric``) unless given.

        Long on purpose: the promotion rule and the decision record it writes are kept side by side.
        """
        mode = mode or get_metric(metric).mode
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if version is None:
            challenger = self.version_for(name, CHALLENGER)
            if challenger is None:
                raise ValueError(f"{name}: no version given and no {CHALLENGER!r} alias to promote")
            version = challenger.version
        version = str(version)
        champion = self.version_for(name, CHAMPION)
        champ = champion.version if champion is not None else None
        if champ is None:
            promoted, reason = True, "no champion yet"
        elif champ == version:
            promoted, reason = False, f"version {version} is already the champion"
        else:
            if holdout_metric_fn is not None:
                candidate_value = holdout_metric_fn(f"models:/{name}/{version}")
                champion_value = holdout_metric_fn(f"models:/{name}/{champ}")
            if candidate_value is None or champion_value is None:
                raise ComparisonNeeded(name, version, champ)
            gain = Metric(metric, maximize=mode == "max").gain(candidate_value, champion_value)
            promoted = gain > 0 and gain >= margin
            reason = (
                f"{metric} {candidate_value:.6g} vs champion v{champ} {champion_value:.6g}: "
                f"gain {gain:+.6g} {'meets' if promoted else 'does not meet'} margin {margin:g} ({mode})"
            )
        decision = PromotionDecision(
            name=name,
            promoted=promoted,
            candidate_version=version,
            champion_version=champ,
            metric=metric,
            candidate_value=candidate_value,
            champion_value=champion_value,
            margin=margin,
            mode=mode,
            reason=reason,
        )
        self._record(decision, by=by or _who())
        return decision

    def rollback(self, name: str, *, by: str | None = None, reason: str | None = None) -> RollbackResult:
        """Point ``champion`` back at the version it replaced (the ``previous_champion`` tag)."""
        champion = self.version_for(name, CHAMPION)
        if champion is None:
            raise ValueError(f"{name}: no champion to roll back")
        previous = champion.tags.get(PREVIOUS_CHAMPION)
        if not previous:
            raise ValueError(f"{name}: champion v{champion.version} records no previous champion")
        who, now = by or _who(), _now()
        self.set_alias(name, CHAMPION, previous)
        self._tags(
            name,
            champion.version,
            decision="rolled_back",
            rolled_back_by=who,
            rolled_back_at=now,
            rollback_reason=reason or "manual rollback",
            restored_version=previous,
        )
        self._tags(name, previous, restored_by=who, restored_at=now, restored_from=champion.version)
        return RollbackResult(name=name, from_version=champion.version, to_version=previous)

    def _record(self, d: PromotionDecision, *, by: str) -> None:
        now = _now()
        tags: dict[str, Any] = {
            "decision": "promoted" if d.promoted else "refused",
            "reason": d.reason,
            "decided_by": by,
            "decided_at": now,
            "metric": d.metric,
            "margin": d.margin,
            "mode": d.mode,
        }
        if d.candidate_value is not None:
            tags["challenger_value"] = d.candidate_value
        if d.champion_value is not None:
            tags["champion_value"] = d.champion_value
        if d.champion_version is not None:
            tags["compared_with"] = d.champion_version
        if d.promoted:
            tags.update(promoted_by=by, promoted_at=now)
            if d.champion_version is not None:
                tags[PREVIOUS_CHAMPION] = d.champion_version
        self._tags(d.name, d.candidate_version, **tags)
        if d.promoted:
            self.set_alias(d.name, CHAMPION, d.candidate_version)
            challenger = self.version_for(d.name, CHALLENGER)
            if challenger is not None and challenger.version == d.candidate_version:
                self.client.delete_registered_model_alias(d.name, CHALLENGER)
            if d.champion_version is not None:
                self._tags(d.name, d.champion_version, replaced_by=d.candidate_version, replaced_at=now)

    def _tags(self, name: str, version: str, **tags: Any) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, str(value))


def holdout_metric(
    frame: pd.DataFrame, *, target: str, metric: str, tracking_uri: str | None = None
) -> Callable[[str], float]:
    """A ``holdout_metric_fn`` for ``promote``: load the pyfunc at a ``models:/`` URI, score ``frame``.

    Example:
        >>> fn = holdout_metric(holdout, target="y", metric="auc", tracking_uri=url)  # doctest: +SKIP
        >>> registry.promote("churn", metric="auc", holdout_metric_fn=fn, margin=0.005)  # doctest: +SKIP
    """
    from app.train.metrics import get_metric

    scoring = get_metric(metric)

    def score(model_uri: str) -> float:
        model = load_pyfunc(model_uri, tracking_uri=tracking_uri)
        pre = model.unwrap_python_model().members[0].preprocessor
        features = frame.drop(columns=[target])
        scores = model.predict(features, params={"method": "predict_scores"})
        y = pre.transform(frame[[*pre.features, target]])["__label__"]
        return scoring.score(y, scores)

    return score


def load_pyfunc(model_uri: str, *, tracking_uri: str | None = None) -> Any:
    """``mlflow.pyfunc.load_model`` of a ``models:/`` URI resolved against ``tracking_uri``.

    MLflow itself resolves ``models:/NAME@ALIAS`` against the process-wide registry URI even when
    ``download_artifacts`` is given another one, so the URI is resolved here with a client of our own.
    """
    import mlflow.artifacts
    import mlflow.pyfunc

    if tracking_uri is None or not model_uri.startswith("models:/"):
        return mlflow.pyfunc.load_model(model_uri)
    registry = ModelRegistry(tracking_uri=tracking_uri)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=registry.download_uri(model_uri), tracking_uri=tracking_uri
    )
    return mlflow.pyfunc.load_model(local)


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _strings(mapping: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping.items()}
