"""The leaderboard: one row per trial (family, params, validation score, cross-validation score, rounds,
training rows, time, status, where it trained: ``in_process`` or ``ray_train``, and whether the final
model holds its refit); for multiclass, validation accuracy and macro-F1 too (``BOARD_METRICS``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from app import atomic
from app.search.spaces import ROWS, split_config
from app.train.metrics import BOARD_METRICS

# The CLI warns when the best persisted model scores this much (relatively) worse on validation than the
# best score a trial reported without persisting it.
WEAKER = 0.01
# A trial's status: completed (its rounds, or early stopping), deadline (ended itself at the search's
# deadline), stopped (by ASHA), cut (ended between reports by Tune's time budget or Ctrl-C) or errored
# (its process died, say). Whatever the status, the trial's last persisted model is a candidate
# (``checkpoint``); only a trial stopped before persisting anything has none.
DEADLINE = "deadline"
CUT = "cut"
EXTRA = list(dict.fromkeys(n for names in BOARD_METRICS.values() for n in names))

COLUMNS = [
    "rank",
    "trial_id",
    "family",
    "score",
    "cv_score",
    "rounds",
    "rows",
    "train_time_s",
    "status",
    "trainer",
    "refit",
    "params",
]


def from_results(
    results,
    *,
    mode: str,
    asha_stopped: set[str] | frozenset[str] = frozenset(),
    cut: set[str] | frozenset[str] = frozenset(),
    all_rows: int | None = None,
) -> pd.DataFrame:
    """Rows from a Tune ``ResultGrid``. ``checkpoint`` is where the trial's persisted model is
    (``app.search.candidates``) and ``score`` that model's validation score; a trial that persisted
    nothing keeps the best score it reported, and no checkpoint. ``asha_stopped``: the trials ASHA
    stopped; ``cut``: those ``app.search.deadline.HardStop`` ended (their processes killed). ``rows``: the
    training rows of the trial, its row ladder's sample (``app.search.ladder``) or ``all_rows``.
    ``cv_score`` is empty and ``refit`` False here; the engine fills in the trials it
    cross-validated (out-of-fold score on train + valid) and those it refit."""
    from app.search import candidates

    rows = []
    for r in results:
        config = r.config or {}
        if "family" not in config:
            continue
        family, params = split_config(config)
        metrics = r.metrics or {}
        history = r.metrics_dataframe
        reported = history["score"].dropna() if history is not None and "score" in history else pd.Series()
        score = None
        if len(reported):
            score = float(reported.max() if mode == "max" else reported.min())
        trial_id = metrics.get("trial_id") or Path(r.path).name
        found = candidates.read(r.path, r.filesystem, reported=metrics if metrics.get("finished") else None)
        if found is not None:
            score = float(found[0]["score"])
        if trial_id in cut:
            status = CUT
        elif r.error is not None:
            status = "errored"
        elif metrics.get("finished"):
            status = DEADLINE if metrics.get("deadline_reached") else "completed"
        else:
            status = "stopped" if trial_id in asha_stopped else CUT
        extra = {**(found[0] if found else {}), **metrics}
        rows.append(
            {
                "trial_id": trial_id,
                "family": family,
                "score": score,
                "cv_score": None,
                "rounds": metrics.get("rounds"),
                "rows": config.get(ROWS) or all_rows,
                "train_time_s": metrics.get("time_total_s"),
                "status": status,
                "trainer": metrics.get("trainer"),
                "refit": False,
                "params": json.dumps(params, sort_keys=True),
                **{n: extra[n] for n in EXTRA if n in extra},
                "checkpoint": found[1] if found else None,
                "history": json.dumps([float(v) for v in reported]),
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
    if "rows" in frame and frame["rows"].nunique() > 1:  # a row ladder: each trial's sample
        cols.insert(cols.index("rounds") + 1, "rows")
    shown = frame.head(limit)[cols].copy()
    for col in ("score", "cv_score", *EXTRA):
        if col in shown:
            shown[col] = shown[col].map(lambda v: f"{v:.5f}" if pd.notna(v) else "-")
    shown["train_time_s"] = shown["train_time_s"].map(lambda v: f"{v:.1f}" if pd.notna(v) else "-")
    return shown.to_string(index=False)


def families(board: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per model family: its trials, their statuses, its best rank on the leaderboard (1 = the best
    trial) and best score; best-ranked family first. Whether the families competed on equal terms shows
    here: a family whose trials were all stopped early has few trials and a low best rank."""
    out: dict[str, dict[str, Any]] = {}
    for family, rows in board.groupby("family", sort=False):
        best = rows.sort_values("rank").iloc[0]
        out[str(family)] = {
            "trials": len(rows),
            "statuses": {str(k): int(v) for k, v in rows["status"].value_counts().items()},
            "best_rank": int(best["rank"]),
            "best_score": None if pd.isna(best["score"]) else float(best["score"]),
        }
    return dict(sorted(out.items(), key=lambda kv: kv[1]["best_rank"]))


def search_summary(search: dict) -> str:
    """One line on how far the search got, e.g. ``search: 14 trials (11 completed, 2 stopped by ASHA,
    1 ended by the deadline with its model) in 25.1 s; the time budget ended it``."""
    words = {
        "completed": "completed",
        "stopped": "stopped by ASHA",
        DEADLINE: "ended by the deadline with its model so far",
        CUT: "cut by the time budget",
        "errored": "errored",
    }
    parts = [f"{n} {words.get(k, k)}" for k, n in search["statuses"].items() if n]
    line = (
        f"search: {search['trials']} trials ({', '.join(parts)}) in {search['seconds']:.1f} s; "
        f"{'the time budget' if search['ended_by'] == 'time budget' else 'num_samples'} ended it"
    )
    if search.get("families"):
        each = [f"{f} {v['trials']} (best #{v['best_rank']})" for f, v in search["families"].items()]
        line += f"\nfamilies: {', '.join(each)}"
    if search.get("row_ladder"):
        each = [f"{r['trials']} on {r['rows']:,}" for r in search["row_ladder"]]
        line += f"\nrows: {', '.join(each)} (row ladder)"
    return f"{line}\n{search['note']}" if search.get("note") else line


def warning(search: dict, *, mode: str) -> str | None:
    """One line for the user when the model is not what the search found: it came from the driver's
    fallback, or the best persisted model is much weaker (``WEAKER``) on validation than the best score
    a trial reported; None otherwise."""
    if search.get("fallback"):
        return f"warning: {search['note']}"
    best = search.get("best_reported")
    kept = [c["score"] for c in search.get("persisted", []) if c["model"] and c["score"] is not None]
    if not best or not kept:
        return None
    have = max(kept) if mode == "max" else min(kept)
    gap = (best["score"] - have if mode == "max" else have - best["score"]) / max(abs(best["score"]), 1e-12)
    if gap <= WEAKER:
        return None
    return (
        f"warning: the best persisted model scores {have:.5f} on validation, {gap:.1%} worse than the "
        f"{best['score']:.5f} that trial {best['trial_id']} ({best['family']}) reported before it was "
        "stopped without persisting that model"
    )
