"""Each model family's share of the search, as fit.json, the CLI and the run report show it."""

from app.search.leaderboard import families, frame, search_summary
from app.search.records import search_record
from app.search.settings import RayTuneSettings


def _board():
    rows = [
        {"trial_id": f"t{i}", "family": family, "score": score, "status": status, "params": "{}"}
        | {"checkpoint": f"/m/t{i}", "history": "[]"}
        for i, (family, score, status) in enumerate(
            [
                ("lightgbm", 0.30, "completed"),
                ("lightgbm", 0.31, "stopped"),
                ("catboost", 0.45, "stopped"),
                ("lightgbm", 0.33, "stopped"),
                ("catboost", 0.29, "completed"),
                ("xgboost", 0.35, "deadline"),
            ]
        )
    ]
    return frame(rows, mode="min")


def test_each_family_has_its_trials_statuses_and_best_rank_best_family_first():
    got = families(_board())
    assert list(got) == ["catboost", "lightgbm", "xgboost"]
    assert got["catboost"] == {
        "trials": 2,
        "statuses": {"completed": 1, "stopped": 1},
        "best_rank": 1,
        "best_score": 0.29,
    }
    assert got["lightgbm"]["trials"] == 3 and got["lightgbm"]["best_rank"] == 2
    assert got["xgboost"]["best_rank"] == 5 and got["xgboost"]["statuses"] == {"deadline": 1}


def test_the_search_record_and_the_cli_line_name_each_family():
    record = search_record(_board(), RayTuneSettings(), window=None, seconds=3.0, mode="min")
    assert record["families"] == families(_board())
    assert "families: catboost 2 (best #1), lightgbm 3 (best #2), xgboost 1 (best #5)" in search_summary(
        record
    )
