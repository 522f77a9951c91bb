"""Atomic file writes: a temporary file beside the target, then a rename, so that a reader (or a run
interrupted mid-write) sees the old file or the new one, never half of one; ``write_json`` is every JSON
artifact's writer."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``Path(path).write_text(text)``, atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(
    path: str | os.PathLike, data: Any, *, indent: int | None = 2, default: Callable[[Any], Any] | None = None
) -> Path:
    """``data`` as JSON at ``path``, atomically, creating folders: every JSON artifact's one writer.

    numpy scalars become plain numbers, paths strings and dates ISO text; another type is an error unless
    ``default`` turns it into something JSON holds. With ``indent``, a list of numbers stays on one line
    (a preprocessor's per-level statistics would otherwise take a line per number).
    """
    text = json.dumps(data, indent=indent, default=lambda value: plain(value, default))
    if indent is not None:
        text = _NUMBER_LIST.sub(
            lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text
        )
    return write_text(path, text)


# An innermost list of numbers as json.dumps(indent=...) spreads it, one number per line (the line
# breaks: a JSON string holds none, so text inside a string never matches).
_NUMBER = r"(?:-?[\d.eE+-]+|NaN|-?Infinity)"
_NUMBER_LIST = re.compile(rf"\[\n\s*({_NUMBER}(?:,\n\s*{_NUMBER})*)\n\s*\]")


def plain(value: Any, default: Callable[[Any], Any] | None = None) -> Any:
    """A value JSON holds for one it does not (``json.dumps``' ``default``)."""
    if hasattr(value, "dtype") and hasattr(value, "item"):  # a numpy scalar
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if default is not None:
        return default(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
