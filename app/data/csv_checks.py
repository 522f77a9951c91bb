"""Checks on a CSV's bytes that Arrow's reader does not report well: invalid UTF-8 (Arrow quietly types
such a column ``binary``) and a row whose field count differs from the header's (Arrow names no line).
Both are located by physical line and column name."""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

EncodingErrors = Literal["strict", "replace"]
_REPLACEMENT = "\ufffd"
_TAIL_BYTES = 1 << 20  # the current line's start is kept up to this size, to name the column


class CsvContentError(Exception):
    """Where the bytes are wrong: ``message`` names the line and ``column`` the header's column."""

    def __init__(self, message: str, column: str | None = None):
        super().__init__(message)
        self.column = column


@dataclass
class Utf8Check:
    """Checks (``strict``) or repairs (``replace``, with U+FFFD) UTF-8 as the CSV streams through it.

    ``feed`` takes each buffer in file order and returns the buffer to parse; ``replaced`` counts the
    invalid byte sequences replaced so far.
    """

    errors: EncodingErrors = "strict"
    replaced: int = 0
    error: CsvContentError | None = None
    _lines: int = 0  # newlines before the current buffer
    _header: bytes | None = None
    _tail: bytes = b""  # the current line's bytes before the current buffer
    _decoder: codecs.IncrementalDecoder = field(init=False)

    def __post_init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(
            "strict" if self.errors == "strict" else "replace"
        )

    def feed(self, buffer: pa.Buffer, *, final: bool = False) -> pa.Buffer:
        data = buffer.to_pybytes()
        if self._header is None and b"\n" in data:
            self._header = self._tail + data.split(b"\n", 1)[0]
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            self.error = self._locate(data, max(exc.start, 0))
            raise self.error from None
        self._advance(data)
        if self.errors == "strict":
            return buffer
        bad = text.count(_REPLACEMENT) - data.count(_REPLACEMENT.encode())
        if bad <= 0:
            return buffer
        self.replaced += bad
        return pa.py_buffer(text.encode())

    def _advance(self, data: bytes) -> None:
        newlines = data.count(b"\n")
        self._lines += newlines
        self._tail = (data.rsplit(b"\n", 1)[-1] if newlines else self._tail + data)[-_TAIL_BYTES:]

    def _locate(self, data: bytes, start: int) -> CsvContentError:
        before = data[:start]
        line = self._lines + before.count(b"\n") + 1
        prefix = (self._tail + before) if b"\n" not in before else before.rsplit(b"\n", 1)[-1]
        column = None
        if self._header is not None and line > 1:
            names = _fields(self._header)
            index = len(_fields(prefix)) - 1
            column = names[index] if 0 <= index < len(names) else None
        where = f"line {line:,}"
        return CsvContentError(
            f"{where}: invalid UTF-8 byte 0x{data[start]:02x}; fix the file, or pass --encoding-errors "
            "replace to replace invalid bytes with U+FFFD",
            column,
        )


def _fields(line: bytes) -> list[str]:
    text = line.decode("utf-8", "replace").rstrip("\r")
    return next(csv.reader([text]), [""])


def find_ragged_row(stream: io.RawIOBase | pa.NativeFile) -> tuple[int, int, int] | None:
    """The first row whose field count differs from the header's: ``(line, fields, header fields)``,
    the line counted in the file (a quoted field may span lines), or None."""
    text = io.TextIOWrapper(_Readable(stream), encoding="utf-8", errors="replace", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return None
    for row in reader:
        if row and len(row) != len(header):
            return reader.line_num, len(row), len(header)
    return None


class _Readable(io.RawIOBase):
    """An Arrow input stream as a Python raw stream, for ``io.TextIOWrapper``."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._stream.read(len(b))
        b[: len(data)] = data
        return len(data)
