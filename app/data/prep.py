"""Out-of-core CSV -> Parquet: stream a CSV of any size into fixed-size Parquet chunks at constant memory.

Resumable through a ``_progress.json`` manifest, local or ``s3://``, one file in-process or many on Ray.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import importlib
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from app.data import csv_types
from app.data.csv_checks import CsvContentError, EncodingErrors, Utf8Check, find_ragged_row
from app.data.errors import DataError
from app.data.filesystem import S3Options, filesystem_for

MANIFEST = "_progress.json"
SUCCESS = "_SUCCESS"
_PART = re.compile(r"part-(\d+)\.parquet")
_TMP = ".tmp-"  # readers skip names starting with "." or "_", so a staged file is never taken for data
_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}

Transform = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass
class PrepResult:
    """What one conversion produced; ``rows`` counts the rows written (after ``transform``)."""

    input_path: str
    out_dir: str
    files: list[str]
    rows: int
    chunks: int
    resumed_chunks: int
    seconds: float
    missing: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    replaced_bytes: int = 0

    def notes(self) -> list[str]:
        """What the conversion changed in the values: markers read as missing, invalid UTF-8 replaced."""
        lines = csv_types.describe(self.missing)
        if self.replaced_bytes:
            lines.append(f"{self.replaced_bytes:,} invalid UTF-8 sequence(s) replaced with U+FFFD")
        return lines


class _InputError(Exception):
    """A problem with the input or its conversion; ``csv_to_parquet`` raises it as a DataError on the file."""

    def __init__(self, message: str, column: str | None = None):
        super().__init__(message)
        self.column = column


def load_transform(spec: str) -> Transform:
    """The function named by ``"module:function"`` (``function`` may be dotted: ``Class.method``).

    Raises:
        DataError: A malformed spec, a module that does not import, a missing or uncallable attribute.
    """
    module_name, sep, attr = spec.partition(":")
    if not (sep and module_name and attr):
        raise DataError(f"transform {spec!r} is not of the form 'module:function'")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise DataError(f"transform {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise DataError(f"transform {spec!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise DataError(f"transform {spec!r}: {attr!r} is a {type(obj).__name__}, not a function")
    return obj


def csv_to_parquet(
    input_path: str,
    out_dir: str,
    *,
    chunk_rows: int = 1_000_000,
    partition_by: str | None = None,
    transform: Transform | str | None = None,
    resume: bool = True,
    progress: bool = False,
    s3: S3Options | None = None,
    block_size: int = 16 << 20,
    na_values: list[str] | None = None,
    encoding_errors: EncodingErrors = "strict",
) -> PrepResult:
    """Stream ``input_path`` into ``out_dir/part-00000.parquet, ...``, ``chunk_rows`` input rows each.

    Memory holds one chunk and a few read blocks whatever the file size. Column types come from the first
    block (a column empty there: from the first block where it has values); the first chunk's output fixes
    the schema that later chunks are cast to. A column of numbers stays numeric when some cells hold a
    missing-value marker (``?``, ``-``, ``N/A``... and ``na_values``): those cells become nulls and are
    counted in ``PrepResult.missing``. Files are staged under hidden names, then moved into place.

    Args:
        input_path: CSV file, local or ``s3://``; ``.gz``, ``.bz2``, ``.zst`` and ``.lz4`` are decompressed.
        out_dir: Output directory, local or ``s3://``.
        chunk_rows: Input rows per chunk: one Parquet file, or one per partition value in the chunk.
        partition_by: Column to hive-partition by: ``out_dir/COL=value/part-00000.parquet``.
        transform: Function, or ``"module:function"``, applied to each chunk as a pandas DataFrame.
        resume: Skip the chunks that an earlier run with the same input and settings finished;
            False clears that run's outputs first.
        progress: Show a progress bar over the input's bytes.
        s3: S3 endpoint and region; None takes them from the ``AWS_*`` environment.
        block_size: Bytes the CSV reader parses at a time (a row must fit in one).
        na_values: More markers of a missing value in numeric columns.
        encoding_errors: ``strict``: invalid UTF-8 is an error naming the line and column; ``replace``:
            replaced with U+FFFD and counted in ``PrepResult.replaced_bytes``.

    Returns:
        All files of the conversion, earlier runs' included, and its counts.

    Raises:
        DataError: A missing input, an unparsable row or value, a failing transform, a chunk that does not
            fit the first chunk's schema, or an earlier conversion in ``out_dir`` with other settings.

    Example:
        >>> csv_to_parquet("big.csv", "big_parquet/", chunk_rows=500_000)  # doctest: +SKIP
    """
    started = time.perf_counter()
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if encoding_errors not in ("strict", "replace"):
        raise ValueError(f"encoding_errors must be 'strict' or 'replace', not {encoding_errors!r}")
    fn, fn_name = _resolve_transform(transform)
    in_fs, in_path = filesystem_for(input_path, s3)
    info = in_fs.get_file_info(in_path)
    if info.type != pafs.FileType.File:
        missing = info.type == pafs.FileType.NotFound
        raise DataError("no such file" if missing else "not a file", path=input_path)
    out = _OutDir(out_dir, s3)
    identity = {"input": in_path, "size": info.size, "mtime_ns": info.mtime_ns, "chunk_rows": chunk_rows}
    identity.update(partition_by=partition_by, transform=fn_name)
    # Recorded only when set, so that manifests written before these options still resume.
    identity.update(na_values=sorted(na_values) if na_values else None)
    identity.update(encoding_errors=None if encoding_errors == "strict" else encoding_errors)
    try:
        state = out.load(identity, resume)
        resumed = len(state["chunks"])
        if not state["complete"]:
            _convert(in_fs, info, out, state, fn, block_size=block_size, progress=progress)
    except _InputError as exc:
        raise DataError(str(exc), path=input_path, column=exc.column) from exc.__cause__
    chunks = state["chunks"]
    files = [f"{out_dir.rstrip('/')}/{f}" for c in chunks for f in c["files"]]
    rows, seconds = sum(c["rows"] for c in chunks), time.perf_counter() - started
    missing: dict[str, dict[str, int]] = {}
    for c in chunks:
        for name, seen in c.get("missing", {}).items():
            for token, n in seen.items():
                missing.setdefault(name, {})[token] = missing.get(name, {}).get(token, 0) + n
    replaced = state.get("replaced_bytes", 0)
    return PrepResult(input_path, out_dir, files, rows, len(chunks), resumed, seconds, missing, replaced)


def csv_to_parquet_many(inputs: list[str], out_dir: str, **kwargs) -> list[PrepResult]:
    """``csv_to_parquet`` for several files in parallel as a Ray Data job, each into ``out_dir/<stem>/``.

    Connects to Ray (``app.cluster.connect``) unless it is initialised; ``kwargs`` are ``csv_to_parquet``'s.

    Raises:
        DataError: Two inputs share a file stem, or some conversions failed (the others still finish).
    """
    import ray

    stems = [p.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0] for p in inputs]
    if len(set(stems)) < len(stems):
        raise DataError(f"inputs need distinct file names (without extensions), got {stems}")
    if not inputs:
        return []
    if not ray.is_initialized():
        from app.cluster import connect

        connect()
    base = out_dir.rstrip("/")
    items = [{"input_path": p, "out_dir": f"{base}/{s}"} for p, s in zip(inputs, stems, strict=True)]
    dataset = ray.data.from_items(items, override_num_blocks=len(items))  # a block, so a task, per file
    rows = {r["input_path"]: r for r in dataset.map(_convert_row, fn_kwargs={"kwargs": kwargs}).take_all()}
    failed = [rows[p]["error"] for p in inputs if rows[p]["error"]]
    if failed:
        raise DataError(f"{len(failed)} of {len(inputs)} conversions failed: " + "; ".join(failed))
    return [PrepResult(**json.loads(rows[p]["result"])) for p in inputs]


def _convert_row(row: dict, kwargs: dict) -> dict:
    """One file of ``csv_to_parquet_many``; its DataError is returned so that the other files finish."""
    try:
        result = json.dumps(asdict(csv_to_parquet(row["input_path"], row["out_dir"], **kwargs)))
        return {"input_path": row["input_path"], "result": result, "error": ""}
    except DataError as exc:
        return {"input_path": row["input_path"], "result": "", "error": str(exc)}


def _resolve_transform(transform: Transform | str | None) -> tuple[Transform | None, str | None]:
    """The function and the name the manifest records for it."""
    if transform is None or isinstance(transform, str):
        return (load_transform(transform) if transform else None), transform
    if not callable(transform):
        raise DataError(f"transform must be a function or 'module:function', not {type(transform).__name__}")
    name = getattr(transform, "__qualname__", type(transform).__qualname__)
    return transform, f"{getattr(transform, '__module__', '?')}:{name}"


def _convert(
    fs: pafs.FileSystem,
    info: pafs.FileInfo,
    out: _OutDir,
    state: dict,
    fn: Transform | None,
    *,
    block_size: int,
    progress: bool,
) -> None:
    """Write the chunks that ``state`` does not list as finished, then mark the output complete."""
    settings, chunks, resumed = state["identity"], state["chunks"], len(state["chunks"])
    errors = settings.get("encoding_errors") or "strict"
    tokens = csv_types.na_tokens(settings.get("na_values"))
    # Reads the header and first block: most bad input fails here, before an earlier output is touched.
    types, numeric, names = _column_types(fs, info.path, block_size, tokens, errors)
    if settings["partition_by"] is not None and fn is None and settings["partition_by"] not in names:
        raise _InputError(f"no such column to partition by; the header has {names}", settings["partition_by"])
    out.save(state)  # before cleaning, so that no crash leaves an older run's manifest behind
    out.clean(keep=range(resumed))
    target = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(state["schema"]))) if state["schema"] else None
    bar = tqdm(total=info.size, unit="B", unit_scale=True, disable=not progress, desc=info.path)
    with _open_csv(fs, info.path, block_size, types, errors=errors) as (raw, reader, throttle), bar:
        for index, table in enumerate(_chunks(reader, throttle, settings["chunk_rows"])):
            bar.update(raw.tell() - bar.n)
            if index < resumed:
                continue  # finished by an earlier run: read past it, write nothing
            missing: dict[str, dict[str, int]] = {}
            try:
                table = csv_types.convert_table(table, numeric, tokens, missing)
            except csv_types.NumberParseError as exc:
                hint = (
                    f"the column's type, {exc.target}, comes from the file's first block; if it marks a "
                    "missing value, pass it with --na-values"
                )
                raise _InputError(f"chunk {index}: {exc} ({hint})", exc.column) from None
            written = _apply(fn, settings["transform"], table, index) if fn else table
            if target is None:  # no pandas metadata; a column all-null here takes the reader's type
                read = reader.schema
                target = pa.schema(
                    [
                        read.field(f.name) if f.name in read.names and pa.types.is_null(f.type) else f
                        for f in written.schema
                    ]
                )
                state["schema"] = base64.b64encode(target.serialize().to_pybytes()).decode()
            written = _conform(written, target, index)
            files = out.write_chunk(written, f"part-{index:05d}.parquet", settings["partition_by"])
            chunk = {"index": index, "rows_in": len(table), "rows": len(written), "files": files}
            chunks.append({**chunk, "missing": missing} if missing else chunk)
            out.save(state)
            pa.default_memory_pool().release_unused()  # so that RSS follows the chunk, not the run's history
        bar.update(info.size - bar.n)
    state["replaced_bytes"] = throttle.check.replaced if throttle.check is not None else 0
    state["complete"] = True
    out.save(state)
    out.put(SUCCESS, b"")


class _OutDir:
    """The output side of one conversion, local or on S3: its manifest, staged writes and clean-up."""

    def __init__(self, uri: str, s3: S3Options | None):
        self.fs, root = filesystem_for(uri, s3)
        self.root = root.rstrip("/")

    def load(self, identity: dict, resume: bool) -> dict:
        """The manifest of the run to continue, or a fresh one."""
        try:
            with self.fs.open_input_stream(f"{self.root}/{MANIFEST}") as f:
                old = json.loads(f.read())
        except FileNotFoundError:
            old = None
        if old is None or not resume:
            return {"identity": identity, "schema": None, "chunks": [], "complete": False}
        was = old["identity"]
        changed = [f"{k} was {was.get(k)!r}, now {v!r}" for k, v in identity.items() if was.get(k) != v]
        if changed:
            raise _InputError(
                f"{self.root} holds an earlier conversion that differs ({'; '.join(changed)}); "
                "pass resume=False (--no-resume) to start over"
            )
        return old

    def save(self, state: dict) -> None:
        self.put(MANIFEST, json.dumps(state).encode())

    def clean(self, keep: range) -> None:
        """Delete ``_SUCCESS``, staged files and parts of chunks not in ``keep`` (here or in COL=v dirs)."""
        for info in self.fs.get_file_info(pafs.FileSelector(self.root, recursive=True, allow_not_found=True)):
            rel = info.path[len(self.root) + 1 :].split("/")
            part = _PART.fullmatch(rel[-1])
            ours = rel[-1].startswith(_TMP) or (part and int(part[1]) not in keep) or rel == [SUCCESS]
            if ours and info.is_file and (len(rel) == 1 or (len(rel) == 2 and "=" in rel[0])):
                self.fs.delete_file(info.path)

    def put(self, rel: str, data: bytes) -> None:
        tmp = self._staging(rel)
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        self.fs.move(tmp, f"{self.root}/{rel}")

    def write_chunk(self, table: pa.Table, name: str, partition_by: str | None) -> list[str]:
        """Stage every file of one chunk under a hidden name, then move them all into place."""
        parts = [(name, table)] if partition_by is None else _partitions(table, partition_by, name)
        staged: list[tuple[str, str]] = []
        try:
            for rel, part in parts:
                staged.append((self._staging(rel), f"{self.root}/{rel}"))
                pq.write_table(part, staged[-1][0], filesystem=self.fs)
            for tmp, final in staged:
                self.fs.move(tmp, final)
        except BaseException:  # a failed chunk leaves nothing behind, neither staged nor moved
            for path in (p for pair in staged for p in pair):
                with contextlib.suppress(OSError):
                    self.fs.delete_file(path)
            raise
        return [rel for rel, _ in parts]

    def _staging(self, rel: str) -> str:
        """A hidden name beside ``root/rel``, its directory made where directories exist."""
        parent, _, base = f"{self.root}/{rel}".rpartition("/")
        if isinstance(self.fs, pafs.LocalFileSystem):
            self.fs.create_dir(parent, recursive=True)
        return f"{parent}/{_TMP}{uuid.uuid4().hex[:8]}-{base}"


def _partitions(table: pa.Table, column: str, name: str) -> list[tuple[str, pa.Table]]:
    """``COL=value/name`` and the rows with that value, in file order (the sort is stable)."""
    if column not in table.column_names:
        raise _InputError("no such column to partition by", column)
    ordered = table.take(pc.sort_indices(table, [(column, "ascending")]))
    runs = pc.run_end_encode(ordered[column].combine_chunks())
    ends = runs.run_ends.to_pylist()
    parts = []
    for value, start, end in zip(runs.values.to_pylist(), [0, *ends[:-1]], ends, strict=True):
        key = "__HIVE_DEFAULT_PARTITION__" if value is None else quote(str(value), safe="")
        parts.append((f"{column}={key}/{name}", ordered.slice(start, end - start).drop_columns([column])))
    return parts


class _Throttle:
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
def _open_csv(
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
        throttle = _Throttle(stream, block_size, check=Utf8Check(errors))
        throttle.source = (fs, path, codec)
        try:
            reader = pcsv.open_csv(
                pa.PythonFile(throttle, mode="r"),
                read_options=pcsv.ReadOptions(block_size=block_size),
                convert_options=convert,
            )
        except (pa.ArrowException, CsvContentError, OSError) as exc:
            raise _input_error(exc, throttle, f"cannot read the header and first block: {exc}") from None
        try:
            yield raw, reader, throttle
        finally:
            throttle.release()  # before closing, so that no read waits on a consumer that is gone
            reader.close()


def _column_types(
    fs: pafs.FileSystem, path: str, block_size: int, tokens: list[str], errors: EncodingErrors
) -> tuple[dict[str, pa.DataType], dict[str, pa.DataType], list[str]]:
    """Types the reader is given, the numeric columns read as text and converted chunk by chunk, and the
    header's column names.

    Arrow's streaming reader fixes each type from the first block: a column of numbers with a ``?`` there
    would be text, and one without it there would fail on a later ``?``. So every column the first block
    shows to hold numbers (and markers of missing values) is read as text and converted with
    ``csv_types``; a column empty in the first block is typed from its first values further on.
    """
    with _open_csv(fs, path, block_size, errors=errors) as (_, reader, throttle):
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
                raise _input_error(exc, throttle, f"in the first block: {exc}") from None
            for name in text if first is not None else []:
                kind = csv_types.numeric_type(first.column(name), tokens)
                if kind is not None:
                    numeric[name] = kind
    types = _settle_null_types(
        fs, path, block_size, {f.name for f in schema if pa.types.is_null(f.type)}, errors
    )
    return {**types, **dict.fromkeys(numeric, pa.string())}, numeric, schema.names


def _settle_null_types(
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
    with _open_csv(fs, path, block_size, string_types, sorted(nulls), errors=errors) as (_, reader, th):
        for chunk in _chunks(reader, th, block_size):
            for name in nulls - types.keys():
                values = chunk[name].drop_null()
                if len(values):  # typed as the reader would have: write them as CSV and read them back
                    buf = io.BytesIO()
                    pcsv.write_csv(pa.table({name: values}), buf)
                    types[name] = pcsv.read_csv(pa.py_buffer(buf.getvalue())).schema.field(name).type
            if len(types) == len(nulls):
                break
    return types


def _chunks(reader: pcsv.CSVStreamingReader, throttle: _Throttle, chunk_rows: int) -> Iterator[pa.Table]:
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
            raise _input_error(exc, throttle, message, name, where=f"chunk {done // chunk_rows}") from None
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


def _input_error(
    exc: BaseException, throttle: _Throttle, message: str, column: str | None = None, *, where: str = ""
) -> _InputError:
    """The reader's error as the user can act on it: invalid UTF-8 or a ragged row by line and column."""
    check = throttle.check
    if check is not None and check.error is not None:
        return _InputError(str(check.error), check.error.column)
    if isinstance(exc, CsvContentError):
        return _InputError(str(exc), exc.column)
    if re.search(r"Expected \d+ columns, got \d+", str(exc)) and throttle.source is not None:
        fs, path, codec = throttle.source
        with fs.open_input_stream(path, compression=codec) as stream:
            found = find_ragged_row(stream)
        if found is not None:
            line, fields, expected = found
            prefix = f"{where}, " if where else ""
            return _InputError(f"{prefix}line {line:,} has {fields} fields, the header has {expected}")
    return _InputError(" ".join(message.split()), column)


def _apply(fn: Transform, name: str, table: pa.Table, index: int) -> pa.Table:
    try:
        out = fn(table.to_pandas())
    except Exception as exc:
        raise _InputError(f"transform {name} failed on chunk {index}: {exc!r}") from exc
    if not isinstance(out, pd.DataFrame):
        raise _InputError(f"transform {name} returned {type(out).__name__} on chunk {index}, not a DataFrame")
    try:
        return pa.Table.from_pandas(out, preserve_index=False)
    except pa.ArrowException as exc:
        raise _InputError(
            f"transform {name}: chunk {index}'s result is not Arrow-convertible: {exc}"
        ) from exc


def _conform(table: pa.Table, target: pa.Schema, index: int) -> pa.Table:
    """``table`` cast to ``target``, the schema of the first chunk."""
    if sorted(table.column_names) != sorted(target.names):
        raise _InputError(f"chunk {index} has columns {table.column_names}, the first had {target.names}")
    columns = []
    for field in target:
        try:
            columns.append(table[field.name].cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            message = f"chunk {index}: cannot cast {table[field.name].type} to the first chunk's {field.type}"
            raise _InputError(f"{message} ({exc})", field.name) from exc
    return pa.Table.from_arrays(columns, schema=target)
