"""Out-of-core CSV -> Parquet: stream a CSV of any size into fixed-size Parquet chunks at constant memory.

Resumable through a ``_progress.json`` manifest, local or ``s3://``, one file in-process or many on Ray.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
from tqdm.auto import tqdm

from app.data import csv_stream, csv_types
from app.data.csv_checks import EncodingErrors
from app.data.errors import DataError
from app.data.filesystem import S3Options, filesystem_for
from app.data.prep_output import MANIFEST, SUCCESS, InputError, OutDir

__all__ = ["MANIFEST", "SUCCESS", "PrepResult", "csv_to_parquet", "csv_to_parquet_many", "load_transform"]


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

    Long because of its documented arguments and the one-line errors it maps each failure to; the
    conversion itself is ``_convert``.
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
    out = OutDir(out_dir, s3)
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
    except InputError as exc:
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
    out: OutDir,
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
    types, numeric, names = csv_stream.column_types(fs, info.path, block_size, tokens, errors)
    if settings["partition_by"] is not None and fn is None and settings["partition_by"] not in names:
        raise InputError(f"no such column to partition by; the header has {names}", settings["partition_by"])
    out.save(state)  # before cleaning, so that no crash leaves an older run's manifest behind
    out.clean(keep=range(resumed))
    target = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(state["schema"]))) if state["schema"] else None
    bar = tqdm(total=info.size, unit="B", unit_scale=True, disable=not progress, desc=info.path)
    with csv_stream.open_csv(fs, info.path, block_size, types, errors=errors) as (raw, reader, throttle), bar:
        for index, table in enumerate(csv_stream.chunks(reader, throttle, settings["chunk_rows"])):
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
                raise InputError(f"chunk {index}: {exc} ({hint})", exc.column) from None
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


def _apply(fn: Transform, name: str, table: pa.Table, index: int) -> pa.Table:
    try:
        out = fn(table.to_pandas())
    except Exception as exc:
        raise InputError(f"transform {name} failed on chunk {index}: {exc!r}") from exc
    if not isinstance(out, pd.DataFrame):
        raise InputError(f"transform {name} returned {type(out).__name__} on chunk {index}, not a DataFrame")
    try:
        return pa.Table.from_pandas(out, preserve_index=False)
    except pa.ArrowException as exc:
        raise InputError(f"transform {name}: chunk {index}'s result is not Arrow-convertible: {exc}") from exc


def _conform(table: pa.Table, target: pa.Schema, index: int) -> pa.Table:
    """``table`` cast to ``target``, the schema of the first chunk."""
    if sorted(table.column_names) != sorted(target.names):
        raise InputError(f"chunk {index} has columns {table.column_names}, the first had {target.names}")
    columns = []
    for field in target:
        try:
            columns.append(table[field.name].cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            message = f"chunk {index}: cannot cast {table[field.name].type} to the first chunk's {field.type}"
            raise InputError(f"{message} ({exc})", field.name) from exc
    return pa.Table.from_arrays(columns, schema=target)
