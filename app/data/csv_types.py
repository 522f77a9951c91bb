"""Numeric columns that hold a few missing-value markers (``?``, ``-``, ``N/A``...): kept numeric, the
markers read as missing and counted, instead of the whole column turning into text (a CSV reader's
type inference, or a Parquet file written from one)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

# Arrow's CSV reader takes its own null spellings ("", "NA", "N/A", "NULL", "NaN", ...) as missing already;
# a Parquet text column keeps them as text, so they are listed too.
DEFAULT_NA_TOKENS = (
    *("?", "-", "--", ".", "na", "None", "none", "NONE", "missing", "<NA>"),
    *("", "NA", "N/A", "n/a", "NULL", "null", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "1.#IND"),
)
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$"
_INTEGER = r"^[+-]?\d+$"


def na_tokens(extra: Iterable[str] | None = None) -> list[str]:
    """The markers read as missing in numeric columns: the defaults and ``extra`` (``--na-values``)."""
    return sorted(set(DEFAULT_NA_TOKENS) | {t.strip() for t in extra or ()})


def numeric_type(values: pa.Array | pa.ChunkedArray, tokens: list[str]) -> pa.DataType | None:
    """``int64`` or ``float64`` when every non-null string in ``values`` is a number or a marker (and at
    least one is a number); else None."""
    text = pc.utf8_trim_whitespace(pc.drop_null(values))
    if len(text) == 0:
        return None
    is_number = pc.match_substring_regex(text, _NUMBER, ignore_case=True)
    numbers = text.filter(is_number)
    if len(numbers) == 0:
        return None
    others = pc.unique(text.filter(pc.invert(is_number)))
    if len(others) and not pc.all(pc.is_in(others, value_set=pa.array(tokens, pa.string()))).as_py():
        return None
    return pa.int64() if pc.all(pc.match_substring_regex(numbers, _INTEGER)).as_py() else pa.float64()


class NumberParseError(ValueError):
    """A value in a numeric column that is neither a number nor a missing-value marker."""

    def __init__(self, column: str, value: str, target: pa.DataType):
        super().__init__(
            f"value {value!r} is not {'an integer' if pa.types.is_integer(target) else 'a number'}"
        )
        self.column, self.value, self.target = column, value, target


def to_numeric(
    column: pa.ChunkedArray, target: pa.DataType, tokens: list[str], *, name: str
) -> tuple[pa.ChunkedArray, dict[str, int]]:
    """``column`` (strings) as ``target`` with ``tokens`` missing, and how often each token was met."""
    text = pc.utf8_trim_whitespace(column)
    is_token = pc.fill_null(pc.is_in(text, value_set=pa.array(tokens, pa.string())), False)
    counts = {}
    if pc.any(is_token).as_py():
        for item in pc.value_counts(text.filter(is_token)).to_pylist():
            counts[item["values"]] = item["counts"]
        text = pc.if_else(is_token, pa.scalar(None, pa.string()), text)
    try:
        return pc.cast(text, target), counts
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pattern = _INTEGER if pa.types.is_integer(target) else _NUMBER
        valid = pc.drop_null(text)
        bad = valid.filter(pc.invert(pc.match_substring_regex(valid, pattern, ignore_case=True)))
        value = bad[0].as_py() if len(bad) else str(valid[0])
        raise NumberParseError(name, value, target) from None


def convert_table(
    table: pa.Table, plan: dict[str, pa.DataType], tokens: list[str], counts: dict[str, dict[str, int]]
) -> pa.Table:
    """``table`` with the ``plan`` columns converted; token counts are added into ``counts``."""
    for name, target in plan.items():
        if name not in table.column_names:
            continue
        converted, seen = to_numeric(table[name], target, tokens, name=name)
        table = table.set_column(table.schema.get_field_index(name), name, converted)
        for token, n in seen.items():
            counts.setdefault(name, {})[token] = counts.get(name, {}).get(token, 0) + n
    return table


def describe(counts: dict[str, dict[str, int]]) -> list[str]:
    """One line per column: how many cells of which markers were read as missing."""
    lines = []
    for name, seen in sorted(counts.items()):
        total = sum(seen.values())
        examples = ", ".join(repr(t) for t, _ in sorted(seen.items(), key=lambda kv: -kv[1])[:5])
        lines.append(
            f"column {name!r}: {total:,} cell(s) {examples} read as missing; the column stays numeric"
        )
    return lines
