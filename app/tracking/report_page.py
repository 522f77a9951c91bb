"""The run report's HTML page: the model's facts, the figures, feature importance, the model families'
trials and the leaderboard's top rows, in one self-contained file beside the PNGs."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd


def write_page(
    path: Path,
    predictor: Any,
    images: dict[str, Path],
    importance: dict[str, float],
    found: dict[str, float],
    leaderboard: pd.DataFrame | None,
    metric: str,
    mode: str,
    families: Mapping[str, Mapping[str, Any]],
) -> Path:
    """Write the page at ``path``: ``images`` by their file names (beside it), the top of ``importance``,
    the ``families`` table and the leaderboard's best rows by ``metric``."""
    meta, esc = predictor.metadata, html.escape
    facts = {
        "family": predictor.family,
        "task": predictor.task,
        "target": predictor.preprocessor.target,
        f"best validation {metric}": meta.get("best_score", meta.get("score")),
        "rounds": meta.get("num_rounds"),
        **{f"{k} (report rows)": round(v, 5) for k, v in found.items()},
    }
    if hasattr(predictor, "members"):
        weights = zip(predictor.members, predictor.weights, strict=True)
        facts["members"] = ", ".join(f"{m.family} ×{w:.3g}" for m, w in weights)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>AutoML run report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}</style></head><body>",
        "<h1>AutoML run report</h1><table>",
        *(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in facts.items()),
        "</table>",
    ]
    for key, image in images.items():
        parts.append(f"<h2>{esc(key.replace('_', ' '))}</h2><img src='{esc(image.name)}' alt='{esc(key)}'>")
    parts.append("<h2>feature importance (mean |SHAP|)</h2><table><tr><th>feature</th><th>value</th></tr>")
    parts += [f"<tr><td>{esc(k)}</td><td>{v:.5g}</td></tr>" for k, v in list(importance.items())[:30]]
    parts.append("</table>")
    if families:
        parts.append(
            "<h2>model families</h2><table><tr><th>family</th><th>trials</th><th>best rank</th>"
            "<th>best score</th><th>statuses</th></tr>"
        )
        for family, v in families.items():
            statuses = ", ".join(f"{k} {n}" for k, n in v.get("statuses", {}).items())
            parts.append(
                f"<tr><td>{esc(family)}</td><td>{v['trials']}</td><td>{v['best_rank']}</td>"
                f"<td>{esc(str(v.get('best_score')))}</td><td>{esc(statuses)}</td></tr>"
            )
        parts.append("</table>")
    if leaderboard is not None and metric in leaderboard.columns:
        top = leaderboard.sort_values(metric, ascending=mode == "min").head(20)
        parts += [f"<h2>leaderboard (top {len(top)} by {esc(metric)})</h2>", top.to_html(index=False)]
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
