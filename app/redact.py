"""Secrets kept out of what the project writes down (MLflow params and tags, messages, run records):
passwords in URLs and the values of secret-named keys are masked.

Endpoints may carry credentials (``redis://:PASSWORD@cache:6379/0``, ``postgresql://user:PASSWORD@db``)
and a config or params mapping may hold a key, token or password; everything logged goes through here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Names whose values are secrets (``redis_password``, ``AWS_SECRET_ACCESS_KEY``, ``api_key``, ``token``).
_SECRET_NAME = re.compile(
    r"pass(?:word|wd)?|secret|token|api[_-]?key|credential|private[_-]?key|authorization", re.I
)
# scheme://user:PASSWORD@host (the user part may be empty, as in redis://:PASSWORD@host).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:@/\s]*:)[^@/\s]+@")
# ?password=...&X-Amz-Signature=... in query strings (presigned URLs, DSNs).
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&][^=&#\s]*(?:pass(?:word|wd)?|secret|token|signature|api[_-]?key|credential)[^=&#\s]*=)"
    r"[^&#\s]+",
    re.I,
)


def is_secret_name(name: str) -> bool:
    """Whether a key or variable named ``name`` holds a secret (``*_env`` keys name a variable, not a value).

    Example:
        >>> [is_secret_name(n) for n in ("AWS_SECRET_ACCESS_KEY", "api_key_env", "max_depth")]
        [True, False, False]
    """
    return bool(_SECRET_NAME.search(name)) and not name.lower().endswith("_env")


def redact_text(text: str) -> str:
    """``text`` with URL passwords and secret query values masked.

    Example:
        >>> redact_text("redis://:hunter2@cache:6379/0")
        'redis://:***@cache:6379/0'
    """
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)


def redact(value: Any, *, key: str | None = None) -> Any:
    """``value`` safe to log: masked whole under a secret-named ``key``, mappings and sequences walked
    (their own keys checked), strings with :func:`redact_text`; other values unchanged."""
    if key is not None and is_secret_name(str(key)) and value not in (None, ""):
        return MASK
    if isinstance(value, Mapping):
        return {k: redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    if isinstance(value, str):
        return redact_text(value)
    return value
