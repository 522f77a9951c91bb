"""The body of ``POST /feedback``: labels for served predictions, checked before the monitor sees them."""

from __future__ import annotations

from typing import Any

import orjson

from app.serve.errors import RequestError


def parse_feedback(body: bytes) -> list[dict[str, Any]]:
    """``{"feedback": [{"prediction_id": ..., "label": ...} | {"row": {...}, "label": ...}]}``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None
    items = doc.get("feedback") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise RequestError(400, 'the body must be {"feedback": [{"prediction_id": ..., "label": ...}, ...]}')
    problems = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "label" not in item or item.get("label") is None:
            problems.append({"field": "label", "row": i, "message": "each item needs a label"})
        elif ("prediction_id" in item) == ("row" in item):
            problems.append(
                {"field": "prediction_id", "row": i, "message": "give prediction_id or row (one)"}
            )
        elif "row" in item and not isinstance(item["row"], dict):
            problems.append({"field": "row", "row": i, "message": "row must be an object of feature values"})
        elif "prediction_id" in item and not isinstance(item["prediction_id"], str):
            problems.append({"field": "prediction_id", "row": i, "message": "prediction_id must be a string"})
    if problems:
        first = problems[0]
        raise RequestError(
            422, f"{len(problems)} bad feedback item(s); first: {first['field']} row {first['row']}", problems
        )
    return items
