"""The input side of a CSV-to-Parquet conversion: Arrow's streaming CSV reader held to a few blocks of
read-ahead, column types settled past the first block, rows regrouped into fixed-size chunks, and the
reader's errors turned into ones that name the line and column."""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.fs as pafs

from app.data import csv_types
from app.data.csv_checks import CsvContentError, EncodingErrors, Utf8Check, find_ragged_row
from app.data.prep_output import InputError

_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}


class Throttle:
    """The input as the CSV reader sees it, held to ``ahead`` blocks before the batches taken from it.

    Arrow's streaming reader prefetches up to 32 blocks on an IO thread however slowly they are consumed
    (about 0.5 GB at 16 MiB blocks); making that thread wait here keeps memory to a few blocks.
    """

    def __init__(
        self, stream: pa.NativeFile, block_size: int, ahead: int = 2, check: Utf8Check | None = None
    ):
        self.stream, self.block_size, self.ahead, self.check = stream, block_size, ahead, check
        self.position = self.taken = 0
        self.closed = self._released = False
        self._turn = threading.Condition()
        self.source: tuple | None = None  # (filesystem, path, codec), to find a bad line again
        self._pending = b""  # checked bytes not yet handed to the reader (a repair can lengthen them)

    def read_buffer(self, nbytes: int) -> pa.Buffer:  # preferred by pa.PythonFile to read(): no copy
        with self._turn:  # batch i needs blocks i and i+1; the timeout only guards against a miscount
            self._turn.wait_for(
                lambda: self._released or self.position < (self.taken + self.ahead) * self.block_size, 60
            )
        if self.check is None:
            buffer = self.stream.read_buffer(nbytes)
            self.position += buffer.size
            return buffer
        if not self._pending:
            raw = self.stream.read_buffer(nbytes)
            self.position += raw.size
            self._pending = self.check.feed(raw, final=raw.size == 0).to_pybytes()
        size = len(self._pending) if nbytes is None or nbytes < 0 else nbytes
        out, self._pending = self._pending[:size], self._pending[size:]
        return pa.py_buffer(out)

    def read(self, nbytes: int = -1) -> bytes:
        return self.read_buffer(nbytes).to_pybytes()

    def took(self) -> None:
        with self._turn:
            self.taken += 1
            self._turn.notify_all()

    def release(self) -> None:
        with self._turn:
            self._released = True
            self._turn.notify_all()

    def seekable(self) -> bool:
        return False


@contextlib.contextmanager
def open_csv(
    fs: pafs.FileSystem,
    path: str,
    block_size: int,
    types: dict | None = None,
    include=None,
    *,
    errors: EncodingErrors = "strict",
):
    """A streaming reader, its throttle and the raw file under them (seekable, so ``tell()`` works)."""
    codec = next((c for ext, c in _CODECS.items() if path.endswith(ext)), None)
    # strings_can_be_null: "", "NA", "null"... are missing values in every column, as in pandas
    convert = pcsv.ConvertOptions(column_types=types, include_columns=include, strings_can_be_null=True)
    with fs.open_input_file(path) as raw:
        stream = pa.CompressedInputStream(raw, codec) if codec else raw
        throttle = Throttle(stream, block_size, check=Utf8Check(errors))
        throttle.source = (fs, path, codec)
        try:
            reader = pcsv.open_csv(
                pa.PythonFile(throttle, mode="r"),
                read_options=pcsv.ReadOptions(block_size=block_size),
                convert_options=convert,
            )
        except (pa.ArrowException, CsvContentError, OSError) as exc:
            raise input_error(exc, throttle, f"cannot read the header and first block: {exc}") from None
        try:
            yield raw, reader, throttle
        finally:
            throttle.release()  # before closing, so that no read waits on a consumer that is gone
            reader.close()


def column_types(
    fs: pafs.FileSystem, path: str, block_size: int, tokens: list[str], errors: EncodingErrors
) -> tuple[dict[str, pa.DataType], dict[str, pa.DataType], list[str]]:
    """Types the reader is given, the numeric columns read as text and converted chunk by chunk, and the
    header's column names.

    Arrow's streaming reader fixes each type from the first block: a column of numbers with a ``?`` there
    would be text, and one without it there would fail on a later ``?``. So every column the first block
    shows to hold numbers (and markers of missing values) is read as text and converted with
    ``csv_types``; a column empty in the first block is typed from its first values further on.
    """
    with open_csv(fs, path, block_size, errors=errors) as (_, reader, throttle):
        schema = reader.schema
        text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        numeric = {
            f.name: f.type for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
        }
        if text:
            try:
                first = reader.read_next_batch()
            except StopIteration:
                first = None
            except (pa.ArrowException, CsvContentError, OSError) as exc:
                raise input_error(exc, throttle, f"in the first block: {exc}") from None
            for name in text if first is not None else []:
                kind = csv_types.numeric_type(first.column(name), tokens)
                if kind is not None:
                    numeric[name] = kind
    types = settle_null_types(
        fs, path, block_size, {f.name for f in schema if pa.types.is_null(f.type)}, errors
    )
    return {**types, **dict.fromkeys(numeric, pa.string())}, numeric, schema.names


def settle_null_types(
    fs: pafs.FileSystem, path: str, block_size: int, nulls: set[str], errors: EncodingErrors
) -> dict[str, pa.DataType]:
    """Types for the columns that the first block leaves all-null, from their first values further on.

    Arrow's streaming reader fixes each type from the first block, so a column that is empty there is
    typed ``null`` and fails on its first value; this reads ahead only as far as it must to type it.
    """
    types: dict[str, pa.DataType] = {}
    if not nulls:
        return types
    string_types = dict.fromkeys(nulls, pa.string())
    with open_csv(fs, path, block_size, string_types, sorted(nulls), errors=errors) as (_, reader, th):
        for chunk in chunks(reader, th, block_size):
            for name in nulls - types.keys():
                values = chunk[name].drop_null()
                if len(values):  # typed as the reader would have: write them as CSV and read them back
                    buf = io.BytesIO()
                    pcsv.write_csv(pa.table({name: values}), buf)
                    types[name] = pcsv.read_csv(pa.py_buffer(buf.getvalue())).schema.field(name).type
            if len(types) == len(nulls):
                break
    return types


def chunks(reader: pcsv.CSVStreamingReader, throttle: Throttle, chunk_rows: int) -> Iterator[pa.Table]:
    """The reader's rows regrouped into tables of exactly ``chunk_rows`` rows (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    count = done = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowException, CsvContentError, OSError) as exc:
            # The streaming reader does not say which row: name the block's start, or find the line.
            column = re.search(r"CSV column #(\d+)", str(exc))
            message = f"chunk {done // chunk_rows}, in the rows after data row {done:,}: {exc}"
            name = column and reader.schema.names[int(column[1])]
            raise input_error(exc, throttle, message, name, where=f"chunk {done // chunk_rows}") from None
        throttle.took()
        done += batch.num_rows
        while batch.num_rows:
            take = min(chunk_rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == chunk_rows:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)


def input_error(
    exc: BaseException, throttle: Throttle, message: str, column: str | None = None, *, where: str = ""
) -> InputError:
    """The reader's error as the user can act on it: invalid UTF-8 or a ragged row by line and column."""
    check = throttle.check
    if check is not None and check.error is not None:
        return InputError(str(check.error), check.error.column)
    if isinstance(exc, CsvContentError):
        return InputError(str(exc), exc.column)
    if re.search(r"Expected \d+ columns, got \d+", str(exc)) and throttle.source is not None:
        fs, path, codec = throttle.source
        with fs.open_input_stream(path, compression=codec) as stream:
            found = find_ragged_row(stream)
        if found is not None:
            line, fields, expected = found
            prefix = f"{where}, " if where else ""
            return InputError(f"{prefix}line {line:,} has {fields} fields, the header has {expected}")
    return InputError(" ".join(message.split()), column)
