"""MkDocs hook: the configuration reference, written from the pydantic models at build time.

``docs/configuration.md`` holds the prose and one marker line per model; each marker becomes the tables of
that model's fields (key, type, default, description), read from the classes themselves, so the page
cannot drift from the code. ``tests/docs/test_site.py`` checks that every field reaches the built page.
"""

from __future__ import annotations

import enum
import re
import types
import typing

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

MARKER = re.compile(r"^<!-- config-reference: (?P<model>[\w.]+) (?P<prefix>[\w.]*) ?-->$", re.MULTILINE)

# annotated_types constraint attribute -> how the reference writes it.
BOUNDS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "min_length": "length ≥", "max_length": "length ≤"}


def _import(path: str) -> type[BaseModel]:
    module, _, name = path.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


def _section(annotation) -> type[BaseModel] | None:
    """The model class of a nested section, or None for a plain value."""
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def type_name(annotation) -> str:
    """A type as a reader writes it in YAML terms: ``int``, ``str | None``, ``"asha" | "fifo"``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin in (list, tuple, set):
        return f"list[{', '.join(type_name(a) for a in args if a is not Ellipsis)}]"
    if origin is dict:
        return f"dict[{', '.join(type_name(a) for a in args)}]"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(f'"{m.value}"' for m in annotation)
    return getattr(annotation, "__name__", str(annotation))


def _bounds(info: FieldInfo) -> str:
    found = []
    for meta in info.metadata:
        for attr, sign in BOUNDS.items():
            value = getattr(meta, attr, None)
            if value is not None:
                found.append(f"{sign} {value}")
    return ", ".join(found)


def default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
        return "" if isinstance(value, BaseModel) else f"`{value!r}`"
    if info.default is PydanticUndefined:
        return "required"
    value = info.default
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, bool):
        return f"`{str(value).lower() if value is not None else 'null'}`"
    return f"`{value!r}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type[BaseModel], FieldInfo]]:
    """Every leaf field of ``model`` and its sections, depth first: (dotted key, owning model, field)."""
    out = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        section = _section(info.annotation)
        if section is not None:
            out.extend(fields(section, f"{key}."))
        else:
            out.append((key, model, info))
    return out


def tables(model: type[BaseModel], prefix: str = "") -> str:
    """Markdown: one table per section of ``model`` (its own fields first), headed by the section's key."""
    blocks = []
    own = [(n, i) for n, i in model.model_fields.items() if _section(i.annotation) is None]
    if own:
        title = prefix.rstrip(".") or model.__name__
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        rows = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
        for name, info in own:
            kind = type_name(info.annotation)
            bounds = _bounds(info)
            if bounds:
                kind = f"{kind} ({bounds})"
            rows.append(
                f"| `{prefix}{name}` | {_cell(kind)} | {_cell(default_text(info))} "
                f"| {_cell(info.description or '')} |"
            )
        where = f"`{model.__module__}.{model.__name__}`"
        intro = f"{_cell(doc)} ({where})" if doc else where
        blocks.append(f"### `{title}`\n\n{intro}\n\n" + "\n".join(rows))
    for name, info in model.model_fields.items():
        section = _section(info.annotation)
        if section is not None:
            blocks.append(tables(section, f"{prefix}{name}."))
    return "\n\n".join(blocks)


def render(markdown: str) -> str:
    """``markdown`` with every marker replaced by its model's tables."""
    return MARKER.sub(lambda m: tables(_import(m["model"]), m["prefix"]), markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs' hook signature
    if page.file.src_uri == "configuration.md":
        return render(markdown)
    return markdown
