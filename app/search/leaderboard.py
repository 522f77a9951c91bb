"""The leaderboard: one row per trial (family, params, validation score, cross-validation score, rounds,
time, status, where it trained: ``in_process`` or ``ray_train``, and whether the final model holds its
refit); for multiclass, validation accuracy and macro-F1 too (``BOARD_METRICS``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from app import atomic
from app.search.spaces import split_config
from app.train.metrics import BOARD_METRICS

# A trial's status: completed (its rounds, or early stopping), deadline (ended by the time budget with
# its model so far, a candidate like a completed one), stopped (by ASHA: no model) or errored.
DEADLINE = "deadline"
EXTRA = list(dict.fromkeys(n for names in BOARD_METRICS.values() for n in names))

COLUMNS = [
    "rank",
    "trial_id",
    "family",
    "score",
    "cv_score",
    "rounds",
    "train_time_s",
    "status",
    "trainer",
    "refit",
    "params",
]


def from_results(results, *, mode: str) -> pd.DataFrame:
    """Rows from a Tune ``ResultGrid``; ``score`` is the best value the trial reported (validation, before
    any refit). ``cv_score`` is empty and ``refit`` False here; the engine fills in the trials it
    cross-validated (out-of-fold score on train + valid) and those it refit."""
    rows = []
    for r in results:
        config = r.config or {}
        if "family" not in config:
            continue
        family, params = split_config(config)
        metrics = r.metrics or {}
        history = r.metrics_dataframe
        score = None
        if history is not None and "score" in history:
            series = history["score"].dropna()
            if len(series):
                score = float(series.max() if mode == "max" else series.min())
        if r.error is not None:
            status = "errored"
        elif metrics.get("finished"):
            status = DEADLINE if metrics.get("deadline_reached") else "completed"
        else:
            status = "stopped"
        rows.append(
            {
                "trial_id": metrics.get("trial_id") or Path(r.path).name,
                "family": family,
                "score": score,
                "cv_score": None,
                "rounds": metrics.get("rounds"),
                "train_time_s": metrics.get("time_total_s"),
                "status": status,
                "trainer": metrics.get("trainer"),
                "refit": False,
                "params": json.dumps(params, sort_keys=True),
                **{n: metrics[n] for n in EXTRA if n in metrics},
                "checkpoint": _uri(r.checkpoint) if r.checkpoint is not None else None,
                "history": json.dumps(
                    [float(v) for v in history["score"].dropna()]
                    if history is not None and "score" in history
                    else []
                ),
            }
        )
    return frame(rows, mode=mode)


def frame(rows: list[dict], *, mode: str) -> pd.DataFrame:
    """The leaderboard of ``rows`` (one dict per trial), best first, ranked."""
    extra = [n for n in EXTRA if any(n in row for row in rows)]
    columns = [c for c in COLUMNS if c != "rank"]
    columns[columns.index("score") + 1 : columns.index("score") + 1] = extra
    board = pd.DataFrame(rows, columns=columns + ["checkpoint", "history"])
    board = board.sort_values("score", ascending=mode == "min", na_position="last").reset_index(drop=True)
    board.insert(0, "rank", range(1, len(board) + 1))
    return board


def _uri(checkpoint) -> str:
    """A checkpoint's path, as a URI when it is not on the local disk (``s3://bucket/...``): the choice
    and the ensemble read it back with ``Checkpoint(uri)``, which takes a bare path for a local one."""
    fs = checkpoint.filesystem
    return checkpoint.path if fs is None or fs.type_name == "local" else f"{fs.type_name}://{checkpoint.path}"


def save(frame: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    public = frame.drop(columns=["checkpoint", "history"], errors="ignore")
    csv, js = out_dir / "leaderboard.csv", out_dir / "leaderboard.json"
    with atomic.replacing(csv) as tmp:
        public.to_csv(tmp, index=False)
    atomic.write_text(js, public.to_json(orient="records", indent=2))
    return {"csv": csv, "json": js}


def table(frame: pd.DataFrame, *, limit: int = 15) -> str:
    """A fixed-width text table of the top rows."""
    cols = ["rank", "family", "score", *[n for n in EXTRA if n in frame], "rounds", "train_time_s", "status"]
    if "cv_score" in frame and frame["cv_score"].notna().any():
        cols.insert(3, "cv_score")
    shown = frame.head(limit)[cols].copy()
    for col in ("score", "cv_score", *EXTRA):
        if col in shown:
            shown[col] = shown[col].map(lambda v: f"{v:.5f}" if pd.notna(v) else "-")
    shown["train_time_s"] = shown["train_time_s"].map(lambda v: f"{v:.1f}" if pd.notna(v) else "-")
    return shown.to_string(index=False)


def search_summary(search: dict) -> str:
    """One line on how far the search got, e.g. ``search: 14 trials (11 completed, 2 stopped by ASHA,
    1 ended by the deadline with its model) in 25.1 s; the time budget ended it``."""
    words = {
        "completed": "completed",
        "stopped": "stopped by ASHA",
        DEADLINE: "ended by the deadline with its model so far",
        "errored": "errored",
    }
    parts = [f"{n} {words.get(k, k)}" for k, n in search["statuses"].items() if n]
    line = (
        f"search: {search['trials']} trials ({', '.join(parts)}) in {search['seconds']:.1f} s; "
        f"{'the time budget' if search['ended_by'] == 'time budget' else 'num_samples'} ended it"
    )
    return f"{line}\n{search['note']}" if search.get("note") else line
