"""The search stage: Ray Tune (Optuna/random, ASHA/FIFO) across model families, leaderboard, ensemble."""

from app.search.engine import AutoMLEngine, FitResult, RayTuneOptimizer
from app.search.settings import RayTuneSettings

__all__ = ["AutoMLEngine", "FitResult", "RayTuneOptimizer", "RayTuneSettings"]
