"""An ensemble model directory: each member's native model directory and ``ensemble.json`` (members and
weights). The search stage chooses the weights; this module only writes, reads and predicts with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app import atomic
from app.train.integrity import ModelFileError, read_json
from app.train.model import ScoringModel

ENSEMBLE_FILE = "ensemble.json"


class EnsemblePredictor(ScoringModel):
    """Weighted average of members' probabilities (classification) or values (regression)."""

    def __init__(self, members: list[Any], weights: list[float], metadata: dict) -> None:
        self.members, self.weights, self.metadata = members, list(weights), metadata
        self.family = "ensemble"
        self.preprocessor = members[0].preprocessor

    def use_device(self, device: str) -> None:
        for member in self.members:
            member.use_device(device)

    def predict_scores(self, data: Any) -> np.ndarray:
        # Each member encodes the same raw columns: share one Arrow table (or float matrix) between them.
        rows = self.members[0].model_input(data)
        return sum(
            w * np.asarray(m.predict_scores(rows)) for m, w in zip(self.members, self.weights, strict=True)
        )


def is_ensemble_dir(path: str | Path) -> bool:
    return (Path(path) / ENSEMBLE_FILE).is_file()


def read_ensemble(path: str | Path) -> tuple[list[Path], list[float], dict]:
    """Member directories (absolute), weights and the whole ``ensemble.json`` of an ensemble directory."""
    path = Path(path)
    spec = read_json(path / ENSEMBLE_FILE, ENSEMBLE_FILE)
    try:
        members = [(path / m["dir"], float(m["weight"])) for m in spec["members"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path / ENSEMBLE_FILE}: not an ensemble description ({exc!r})") from None
    if not members:
        raise ModelFileError(f"{path / ENSEMBLE_FILE}: lists no members")
    return [d for d, _ in members], [w for _, w in members], spec


def save_ensemble(member_dirs: list[Path], weights: np.ndarray, out_dir: Path, *, info: dict) -> Path:
    """Write ``ensemble.json`` naming member directories (relative to ``out_dir``) and weights."""
    out_dir.mkdir(parents=True, exist_ok=True)
    members = [
        {"dir": str(Path(d).relative_to(out_dir)), "weight": float(w)}
        for d, w in zip(member_dirs, weights, strict=True)
        if w > 0
    ]
    atomic.write_json(out_dir / ENSEMBLE_FILE, {"format_version": 1, "members": members, **info})
    return out_dir
