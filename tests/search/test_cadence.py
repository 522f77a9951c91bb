"""When a trial reports: at ASHA rungs, else at most once per interval (reports cost a driver round trip)."""

from app.config import SearchConfig
from app.search.tuner import ReportCadence, asha_grace, asha_rungs


def _settings(**kw):
    base = {
        "scheduler": "asha",
        "grace_period": 2,
        "report_every": 10,
        "reduction_factor": 3,
        "max_rounds": 300,
    }
    return SearchConfig(**{**base, **kw})


def test_asha_rungs_are_the_schedulers_milestones_in_rounds():
    assert asha_rungs(_settings()) == [20, 60, 180]
    assert asha_rungs(_settings(max_rounds=180)) == [20, 60]
    assert asha_rungs(_settings(scheduler="fifo")) == []


def test_a_small_round_limit_keeps_ashas_grace_period_within_it():
    """`automl fit --max-rounds 10` (the CLI's minimum): ASHA refuses a grace period past max_t."""
    from ray.tune.schedulers import ASHAScheduler

    settings = _settings(max_rounds=10)
    assert asha_grace(settings) == 11 and asha_rungs(settings) == []
    ASHAScheduler(time_attr="rounds", max_t=settings.max_rounds + 1, grace_period=asha_grace(settings))
    assert asha_grace(_settings()) == 20


def test_fast_trials_report_only_at_rungs():
    now = [0.0]
    cadence = ReportCadence(10, [20, 60, 180], min_interval_s=1.0, clock=lambda: now[0])
    due = []
    for done in range(1, 301):
        now[0] += 0.001  # 1 ms a round: 0.3 s in all, never a second between reports
        if cadence.due(done):
            due.append(done)
    assert due == [20, 60, 180]


def test_slow_trials_report_every_multiple_of_report_every_once_the_interval_passed():
    now = [0.0]
    cadence = ReportCadence(10, [], min_interval_s=1.0, clock=lambda: now[0])
    due = []
    for done in range(1, 61):
        now[0] += 0.06  # 0.6 s per 10 rounds: every other multiple of 10 is a second later
        if cadence.due(done):
            due.append(done)
    assert due == [20, 40, 60]
