"""SHA-256 of a model directory's files: recorded in ``metadata.json`` when a model is saved and checked
before any library parses a file, so a damaged or tampered file is one error naming it, never a crash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CHECKSUMS_KEY = "sha256"
_CHUNK = 1 << 20


class ModelFileError(ValueError):
    """A model directory whose files are missing, damaged or changed since they were saved."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksums(directory: Path, names: list[str]) -> dict[str, str]:
    """``{name: sha256}`` of ``names`` inside ``directory``."""
    return {name: sha256_file(directory / name) for name in names}


def verify(directory: Path, meta: dict[str, Any]) -> None:
    """Raise ``ModelFileError`` naming the first recorded file that is missing or differs.

    Models saved before checksums were recorded carry none and pass unchecked.
    """
    for name, expected in (meta.get(CHECKSUMS_KEY) or {}).items():
        path = directory / name
        if not path.is_file():
            raise ModelFileError(f"{path}: model file missing")
        if sha256_file(path) != expected:
            raise ModelFileError(
                f"{path}: damaged or changed since it was saved (its SHA-256 differs from metadata.json)"
            )


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; a missing or unparsable file is a ``ModelFileError`` naming it."""
    if not path.is_file():
        raise ModelFileError(f"{path}: {what} missing")
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: {what} unreadable ({exc})") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{path}: {what} is not a JSON object")
    return value
