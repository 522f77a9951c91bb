"""Every bench script's last line is strict JSON: a figure that could not be measured is null."""

from __future__ import annotations

import json

import numpy as np

from bench._harness import emit


def test_the_last_line_is_strict_json_with_unmeasured_figures_as_null(capsys):
    emit("x", ratio=float("nan"), rps=np.float64(1.5), runs=[float("inf"), 2], by={"n": np.int64(3)})
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))) == {
        "bench": "x",
        "rps": 1.5,
        "runs": [None, 2],
        "by": {"n": 3},
        "ratio": None,
    }
