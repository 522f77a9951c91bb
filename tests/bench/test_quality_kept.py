"""The peers' runs kept in the repository (bench/results/quality): found by ``--reuse`` when the run's own
directory has none, and each one whole: conditions that match its place, scores and the machine."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _quality_data import DATASETS  # noqa: E402
from quality import KEPT, SYSTEMS, scored_file  # noqa: E402


def test_a_run_s_own_scores_come_first_then_the_kept_ones(tmp_path):
    out, kept = tmp_path / "out", tmp_path / "kept"
    work = out / "flaml" / "digits" / "b120-seed0"
    assert scored_file(work, out, kept) is None
    (kept / "flaml" / "digits" / "b120-seed0").mkdir(parents=True)
    (kept / "flaml" / "digits" / "b120-seed0" / "scored.json").write_text("{}")
    assert scored_file(work, out, kept) == kept / "flaml" / "digits" / "b120-seed0" / "scored.json"
    work.mkdir(parents=True)
    (work / "scored.json").write_text("{}")
    assert scored_file(work, out, kept) == work / "scored.json"


def test_every_kept_run_is_a_peer_s_whole_run_where_its_path_says():
    names = {d.name for d in DATASETS}
    for path in KEPT.glob("*/*/*/scored.json"):
        system, dataset, slot = path.relative_to(KEPT).parts[:3]
        assert system in SYSTEMS and system != "project" and dataset in names, path
        budget, seed = re.fullmatch(r"b([\d.]+)-seed(\d+)", slot).groups()
        saved = json.loads(path.read_text())
        assert saved["conditions"]["time_budget_s"] == float(budget), path
        assert saved["conditions"]["seed"] == int(seed), path
        assert saved["machine"]["cores"] and saved["machine"]["date"], path
        assert "error" in saved["result"] or saved["result"]["scores"], path
