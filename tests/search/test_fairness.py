"""Fair competition between families (``search.family_fairness``): each family's rungs are its own, and
every family keeps a share of the trials until it is shown worse on equal terms."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from ray.tune.schedulers import TrialScheduler

from app.search.deadline import RecordingASHA
from app.search.fairness import SHOWN_AT, FamilyASHA, FamilyShareSearch
from app.search.spaces import OptunaSpace, initial_points

FAMILIES = ["xgboost", "lightgbm", "catboost"]


@dataclass
class FakeTrial:
    trial_id: str
    config: dict = field(default_factory=dict)


def _decisions(scheduler) -> dict[str, str]:
    """Three LightGBM trials, then two CatBoost trials whose rounds learn less, at ASHA's first rung."""
    out = {}
    for tid, family, score in [
        ("l1", "lightgbm", 0.30),
        ("l2", "lightgbm", 0.31),
        ("l3", "lightgbm", 0.32),
        ("c1", "catboost", 0.50),
        ("c2", "catboost", 0.55),
    ]:
        trial = FakeTrial(tid, {"family": family})
        scheduler.on_trial_add(None, trial)
        out[tid] = scheduler.on_trial_result(None, trial, {"rounds": 10, "score": score})
    return out


def test_family_asha_judges_a_trial_against_its_own_family_only():
    args = {"time_attr": "rounds", "metric": "score", "mode": "min", "max_t": 1000, "grace_period": 10}
    plain = _decisions(RecordingASHA(reduction_factor=3, **args))
    assert plain["c1"] == TrialScheduler.STOP  # compared with LightGBM's rounds: stopped at once
    scheduler = FamilyASHA(reduction_factor=3, **args)
    fair = _decisions(scheduler)
    assert fair["c1"] == TrialScheduler.CONTINUE  # the first CatBoost trial at this rung
    assert fair["c2"] == TrialScheduler.STOP  # worse than CatBoost's own
    assert fair["l1"] == TrialScheduler.CONTINUE
    assert scheduler.stopped == {"l2", "l3", "c2"}  # the leaderboard's "stopped", as before


def _search(seed: int = 0) -> FamilyShareSearch:
    points = initial_points(FAMILIES, 2000, 10, "binary")
    return FamilyShareSearch(
        space=OptunaSpace(FAMILIES, 2000, 10, "binary"),
        metric="score",
        mode="min",
        points_to_evaluate=points,
        seed=seed,
        families=FAMILIES,
        initial=len(points),
    )


def _run(search: FamilyShareSearch, trials: int, score: dict[str, float], spread: float = 0.0) -> None:
    """Propose and finish ``trials`` trials one at a time: a family's trials score ``score[family]`` plus
    up to ``spread`` (how much its configurations differ): its first trial its best, each later one a
    little worse up to the spread, whichever trials TPE gives it."""
    counts = dict.fromkeys(score, 0)
    for i in range(trials):
        family = search.suggest(f"t{i}")["family"]
        value = score[family] + spread * min(counts[family], 4) / 4
        counts[family] += 1
        search.on_trial_complete(f"t{i}", {"score": value, "finished": True, "rounds": 100})


@pytest.mark.parametrize("seed", [0, 1])
def test_every_family_keeps_a_share_until_it_is_shown_worse(seed):
    search = _search(seed)
    # LightGBM is best, the others a little worse: within the spread of LightGBM's own configurations,
    # so none is shown worse and each keeps its share however TPE leans.
    close = {"lightgbm": 0.300, "xgboost": 0.302, "catboost": 0.304}
    _run(search, 40, close, spread=0.02)
    assert not any(search.shown_worse(f) for f in FAMILIES)
    total = sum(search.started.values())
    for family in FAMILIES:
        assert search.started[family] >= total / (2 * len(FAMILIES)) - 1, search.started


def test_a_family_shown_worse_on_equal_terms_gets_no_forced_trials():
    search = _search()
    far = {"lightgbm": 0.30, "xgboost": 0.31, "catboost": 0.90}
    _run(search, 40, far)
    assert len(search.finished["catboost"]) >= SHOWN_AT and search.shown_worse("catboost")
    assert not search.shown_worse("lightgbm")
    assert search.owed() != "catboost"


def test_trials_stopped_at_a_rung_do_not_count_as_shown_worse():
    search = _search()
    for i, family in enumerate(["lightgbm"] * 3 + ["catboost"] * 3):
        search.family_of[f"x{i}"] = family
        search._ot_trials[f"x{i}"] = search._ot_study.ask()
        score = 0.3 if family == "lightgbm" else 0.9
        # CatBoost's were stopped by ASHA (no final report): they say nothing of the family's end.
        search.on_trial_complete(f"x{i}", {"score": score, "finished": family == "lightgbm"})
    assert search.finished["catboost"] == [] and not search.shown_worse("catboost")


@pytest.mark.slow
def test_a_search_with_family_fairness_runs_every_family_its_share(ray_session, tmp_path):
    from sklearn.datasets import load_breast_cancer

    from app.search import AutoMLEngine, RayTuneOptimizer, RayTuneSettings

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    settings = RayTuneSettings(num_samples=18, family_fairness=True, max_rounds=60, cv_folds=0, seed=3)
    result = AutoMLEngine(RayTuneOptimizer(settings), out_dir=tmp_path, track=False).fit(x, y)
    counts = {f: v["trials"] for f, v in result.search["families"].items()}
    assert sum(counts.values()) == 18 and set(counts) == set(FAMILIES)
    assert min(counts.values()) >= 18 / (2 * len(FAMILIES)) - 1, counts
