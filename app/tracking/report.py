"""The run report: PNGs (learning curves of the top trials, the leaderboard by family, global feature
importance from each library's native TreeSHAP, ROC/PR curves and a confusion matrix or residual plots)
gathered in one static ``report.html`` under ``RUN_DIR/report/``; ``regenerate_report`` rebuilds it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app import atomic
from app.learners import learner
from app.tracking import curves as m
from app.tracking.report_page import write_page
from app.train.load import load_model
from app.train.metrics import get_metric

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from app.tracking.tracker import MLflowTracker

REPORT_DIR = "report"
INPUTS_DIR = "inputs"
LABEL = "__label__"


@dataclass
class RunReport:
    """Where the report went and what it found."""

    html: Path
    images: dict[str, Path]
    importance: dict[str, float]  # mean |SHAP| per feature, largest first
    metrics: dict[str, float] = field(default_factory=dict)  # the model on the validation rows
    cut: list[str] = field(default_factory=list)  # what the clock left out (``by``)


class _Clock:
    """The report's time: ``by`` (``time.monotonic()``, or None: no limit), and how long each step took,
    so that the next one of the same kind is skipped when it would end past ``by``."""

    def __init__(self, by: float | None) -> None:
        self.by, self.cut = by, []
        self.last = 0.0

    def left(self) -> float:
        return float("inf") if self.by is None else self.by - time.monotonic()

    def allows(self, what: str) -> bool:
        if self.left() > self.last:
            return True
        self.cut.append(f"{what} left out")
        return False

    def timed(self, fn):
        started = time.monotonic()
        out = fn()
        self.last = time.monotonic() - started
        return out


def build_report(
    run_dir: str | Path,
    *,
    model_dir: str | Path,
    valid: pd.DataFrame,
    leaderboard: pd.DataFrame | None = None,
    histories: Mapping[str, Sequence[float]] | None = None,
    metric: str | None = None,
    mode: str | None = None,
    top_k: int = 5,
    max_rows: int = 2000,
    tracker: MLflowTracker | None = None,
    tracking_uri: str | None = None,
    by: float | None = None,
    families: Mapping[str, Mapping[str, Any]] | None = None,
) -> RunReport:
    """Write ``RUN_DIR/report/*.png`` and ``report.html`` for the model in ``model_dir`` (a single model or
    an ``ensemble.json`` directory) on ``valid`` (raw columns with the target), plus the inputs that
    ``automl report RUN_DIR`` needs to rebuild them.

    ``histories`` maps a trial name to its per-round validation metric (default: the model's own
    history); ``leaderboard`` has one row per trial with a ``family`` column and the metric column.
    With ``tracker`` (an active run) the PNGs and the page are logged as artifacts under ``report/``.
    ``model_dir`` may be a ``models:/`` URI resolved on ``tracking_uri``. With ``by``
    (``time.monotonic()``) the report fits before it: TreeSHAP runs on as many rows as its rate, timed
    on a few rows first, allows in part of the time left, and a figure that would end past ``by`` is
    left out (``cut`` says which). ``families`` (``fit.json``'s ``search.families``) is shown as a table:
    each model family's trials and best rank.

    Example:
        >>> rep = build_report("runs/r1", model_dir="runs/r1/model", valid=valid_frame)  # doctest: +SKIP
        >>> next(iter(rep.importance))  # doctest: +SKIP
        'x0'

    Long on purpose: it lists the report's figures in page order; each is one helper call.
    """
    out = Path(run_dir) / REPORT_DIR
    (out / INPUTS_DIR).mkdir(parents=True, exist_ok=True)
    predictor = load_model(model_dir, tracking_uri=tracking_uri)
    meta = predictor.metadata
    metric = metric or meta.get("metric_name") or meta.get("metric") or "metric"
    mode = mode or get_metric(metric).mode
    target = predictor.preprocessor.target
    rows = valid[valid[target].notna()] if target in valid.columns else valid
    if len(rows) > max_rows:
        rows = rows.sample(max_rows, random_state=0)
    _save_inputs(
        out / INPUTS_DIR,
        model_dir,
        rows,
        leaderboard,
        histories,
        metric=metric,
        mode=mode,
        top_k=top_k,
        families=dict(families or {}),
    )

    clock = _Clock(by)
    importance = shap_importance(predictor, _shap_rows(predictor, rows, clock))
    kind = "+".join(dict.fromkeys(m.family for m in getattr(predictor, "members", [predictor])))
    images = {
        "importance": clock.timed(lambda: _save(_importance_figure(importance, kind), out / "importance.png"))
    }
    curves = dict(histories) if histories else {"final model": (meta.get("history") or {}).get(metric, [])}
    if any(len(v) for v in curves.values()) and clock.allows("learning curves"):
        images["learning_curves"] = clock.timed(
            lambda: _save(_curves_figure(curves, metric, mode, top_k), out / "learning_curves.png")
        )
    ranked = leaderboard is not None and "family" in leaderboard.columns and metric in leaderboard.columns
    if ranked and clock.allows("leaderboard figure"):
        images["leaderboard"] = clock.timed(
            lambda: _save(_leaderboard_figure(leaderboard, metric, mode), out / "leaderboard.png")
        )
    found: dict[str, float] = {}
    if clock.allows("validation figures"):
        scores = predictor.predict_scores(rows)
        y = predictor.preprocessor.transform(rows)[LABEL]
        if predictor.task == "regression":
            found = {name: get_metric(name).score(y, scores) for name in ("rmse", "mae")}
            images["residuals"] = _save(_residuals_figure(y, scores), out / "residuals.png")
        else:
            classes = [str(c) for c in predictor.classes or range(scores.shape[1])]
            found = {name: get_metric(name).score(y, scores) for name in ("auc", "logloss", "accuracy")}
            images["roc_pr"] = _save(_roc_pr_figure(y, scores, classes), out / "roc_pr.png")
            cm = m.confusion(y, np.argmax(scores, axis=1), len(classes))
            images["confusion"] = _save(_confusion_figure(cm, classes), out / "confusion_matrix.png")
    page = write_page(
        out / "report.html", predictor, images, importance, found, leaderboard, metric, mode, families or {}
    )
    report = RunReport(html=page, images=images, importance=importance, metrics=found, cut=clock.cut)
    if tracker is not None:
        for path in [*images.values(), page]:
            tracker.log_artifact(path, REPORT_DIR)
        tracker.log_dict(importance, f"{REPORT_DIR}/shap_importance.json")
    return report


def regenerate_report(
    run_dir: str | Path,
    *,
    model_dir: str | Path | None = None,
    tracker: MLflowTracker | None = None,
    tracking_uri: str | None = None,
) -> RunReport:
    """Rebuild ``RUN_DIR/report/`` from the inputs saved by the last ``build_report`` (``model_dir``: another
    model, a ``models:/`` URI on ``tracking_uri`` included)."""
    inputs = Path(run_dir) / REPORT_DIR / INPUTS_DIR
    spec_path = inputs / "report.json"
    if not spec_path.is_file():
        raise FileNotFoundError(
            f"{run_dir}: no {REPORT_DIR}/{INPUTS_DIR}/report.json; build the report first"
        )
    spec = json.loads(spec_path.read_text())
    board = inputs / "leaderboard.parquet"
    hist = inputs / "histories.json"
    return build_report(
        run_dir,
        model_dir=model_dir or spec["model_dir"],
        valid=pd.read_parquet(inputs / "valid.parquet"),
        leaderboard=pd.read_parquet(board) if board.is_file() else None,
        histories=json.loads(hist.read_text()) if hist.is_file() else None,
        metric=spec["metric"],
        mode=spec["mode"],
        top_k=spec["top_k"],
        tracker=tracker,
        tracking_uri=tracking_uri,
        families=spec.get("families"),
    )


# TreeSHAP is timed on this many rows first; it then takes at most SHAP_SHARE of the report's time left.
SHAP_PROBE_ROWS = 20
SHAP_SHARE = 0.5


def _shap_rows(predictor: Any, rows: pd.DataFrame, clock: _Clock) -> pd.DataFrame:
    """The rows TreeSHAP can explain in its share of ``clock``'s time left, at its rate on a probe."""
    if clock.by is None or len(rows) <= SHAP_PROBE_ROWS:
        return rows
    probe = rows.head(SHAP_PROBE_ROWS)
    started = time.monotonic()
    shap_importance(predictor, probe)
    per_row = (time.monotonic() - started) / len(probe)
    fit = int(SHAP_SHARE * clock.left() / max(per_row, 1e-9))
    if fit >= len(rows):
        return rows
    fit = max(fit, SHAP_PROBE_ROWS)
    clock.cut.append(f"TreeSHAP on {fit:,} of {len(rows):,} rows")
    return rows.head(fit)


def shap_importance(predictor: Any, frame: pd.DataFrame) -> dict[str, float]:
    """Mean absolute SHAP value per feature (over rows and classes) from the library's own TreeSHAP:
    XGBoost ``pred_contribs``, LightGBM ``pred_contrib``, CatBoost ``ShapValues``; for an ensemble, the
    members' values averaged with the ensemble weights. Largest first. (Each learner's ``shap_values``.)"""
    if hasattr(predictor, "members"):
        total: dict[str, float] = {}
        for member, weight in zip(predictor.members, predictor.weights, strict=True):
            for name, value in shap_importance(member, frame).items():
                total[name] = total.get(name, 0.0) + weight * value
        return dict(sorted(total.items(), key=lambda kv: -kv[1]))

    pre = predictor.preprocessor
    features = pre.columns  # the model's matrix columns (date parts included)
    columns = pre.transform(frame, with_target=False)
    n, f = len(frame), len(features)
    contrib = learner(predictor.family).shap_values(predictor.model, columns, pre)
    # (n, f+1), (n, k, f+1) or LightGBM's (n, k*(f+1)); the last column of each block is the bias.
    values = np.abs(np.asarray(contrib, dtype=np.float64).reshape(n, -1, f + 1)[:, :, :f]).mean(axis=(0, 1))
    return dict(sorted(zip(features, values.tolist(), strict=True), key=lambda kv: -kv[1]))


def _save_inputs(
    inputs: Path,
    model_dir: str | Path,
    rows: pd.DataFrame,
    leaderboard: pd.DataFrame | None,
    histories: Mapping[str, Sequence[float]] | None,
    **spec: Any,
) -> None:
    rows.to_parquet(inputs / "valid.parquet", index=False)
    if leaderboard is not None:
        leaderboard.to_parquet(inputs / "leaderboard.parquet", index=False)
    if histories:
        atomic.write_json(inputs / "histories.json", {k: list(map(float, v)) for k, v in histories.items()})
    spec["model_dir"] = str(Path(model_dir).resolve())
    atomic.write_json(inputs / "report.json", spec)


def _figure(width: float = 7.0, height: float = 4.5, cols: int = 1) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure  # the Agg canvas, no pyplot state

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, cols)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    return path


def _importance_figure(importance: dict[str, float], family: str, top: int = 20) -> Figure:
    names, values = list(importance)[:top][::-1], list(importance.values())[:top][::-1]
    fig, ax = _figure(7, 0.35 * len(names) + 1.5)
    ax.barh(names, values, color="#4C72B0")
    ax.set_xlabel("mean |SHAP value|")
    ax.set_title(f"Global feature importance ({family} TreeSHAP)")
    return fig


def _curves_figure(curves: Mapping[str, Sequence[float]], metric: str, mode: str, top_k: int) -> Figure:
    pick = max if mode == "max" else min
    best = sorted((c for c in curves.items() if len(c[1])), key=lambda kv: pick(kv[1]), reverse=mode == "max")
    fig, ax = _figure()
    for name, values in best[:top_k]:
        ax.plot(np.arange(len(values)), values, label=f"{name} (best {pick(values):.4g})")
    ax.set_xlabel("boosting round")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"Learning curves of the top {min(top_k, len(best))} trials")
    ax.legend(fontsize=8)
    return fig


def _leaderboard_figure(board: pd.DataFrame, metric: str, mode: str) -> Figure:
    groups = {fam: g[metric].dropna().to_numpy() for fam, g in board.groupby("family")}
    # best family on top: the boxplot draws its first group at the bottom
    order = sorted(groups, key=lambda k: groups[k].max() if mode == "max" else -groups[k].min())
    fig, ax = _figure()
    ax.boxplot([groups[k] for k in order], tick_labels=order, orientation="horizontal")
    rng = np.random.default_rng(0)
    for i, fam in enumerate(order, start=1):
        ax.scatter(groups[fam], i + rng.uniform(-0.12, 0.12, len(groups[fam])), s=14, alpha=0.7)
    ax.set_xlabel(f"validation {metric} ({'higher' if mode == 'max' else 'lower'} is better)")
    ax.set_title("Leaderboard by family")
    return fig


def _roc_pr_figure(y: np.ndarray, scores: np.ndarray, classes: list[str]) -> Figure:
    fig, (roc_ax, pr_ax) = _figure(11, 4.5, cols=2)
    shown = [1] if len(classes) == 2 else range(min(len(classes), 10))
    for k in shown:
        positive = np.asarray(y, dtype=np.int64) == k
        fpr, tpr, auc = m.roc_curve(positive, scores[:, k])
        recall, precision, ap = m.pr_curve(positive, scores[:, k])
        roc_ax.plot(fpr, tpr, label=f"{classes[k]} (AUC {auc:.3f})")
        pr_ax.plot(recall, precision, label=f"{classes[k]} (AP {ap:.3f})")
    roc_ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    roc_ax.legend(fontsize=8)
    pr_ax.legend(fontsize=8)
    return fig


def _confusion_figure(cm: np.ndarray, classes: list[str]) -> Figure:
    fig, ax = _figure(1.0 + 0.7 * len(classes) + 2, 0.7 * len(classes) + 2)
    image = ax.imshow(cm, cmap="Blues")
    for (i, j), count in np.ndenumerate(cm):
        ax.text(
            j, i, str(count), ha="center", va="center", color="white" if count > cm.max() / 2 else "black"
        )
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    fig.colorbar(image, ax=ax)
    return fig


def _residuals_figure(y: np.ndarray, predicted: np.ndarray) -> Figure:
    residual = np.asarray(y, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    fig, (scatter_ax, hist_ax) = _figure(11, 4.5, cols=2)
    scatter_ax.scatter(predicted, residual, s=8, alpha=0.5)
    scatter_ax.axhline(0, color="grey", lw=0.8)
    scatter_ax.set(xlabel="predicted", ylabel="residual (true - predicted)", title="Residuals")
    hist_ax.hist(residual, bins=40)
    hist_ax.set(xlabel="residual", ylabel="rows", title="Residual distribution")
    return fig
