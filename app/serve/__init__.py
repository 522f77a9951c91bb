"""Online prediction on Ray Serve: ``build_app`` (named in serve_config.yaml), the guide's
``create_app``/``run_server``, and the ``RedisCache``/``PredictionCache`` prediction cache.

Exports are loaded on first use, so importing ``app.serve`` starts nothing and imports little.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "build_app": "app.serve.app",
    "serve_config": "app.serve.app",
    "create_app": "app.serve.guide",
    "run_server": "app.serve.guide",
    "RedisCache": "app.serve.cache",
    "PredictionCache": "app.serve.cache",
    "LRUCache": "app.serve.cache",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name == "service":  # `serve build app.serve:service`: the application, its model left to user_config
        from app.serve.app import build_app

        return build_app({})
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'app.serve' has no attribute {name!r}")
