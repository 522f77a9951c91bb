"""A dataset's files and what their footers say: the files under a URI (a file, a directory or a glob;
hidden and temporary files skipped), Hive partition values, each file's schema, rows, nulls and bytes."""

from __future__ import annotations

import fnmatch
import glob as _glob
import posixpath

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from app.data.errors import DataError
from app.data.spec import DatasetSpec

_HIDDEN_PREFIXES = ("_", ".")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")


def _is_data_file(path: str) -> bool:
    """False for hidden and bookkeeping files (``_SUCCESS``, ``.crc``) and half-written ``.tmp`` ones."""
    name = posixpath.basename(path)
    return not name.startswith(_HIDDEN_PREFIXES) and not name.endswith((".tmp", ".crc"))


def expand(uri: str, fs: pafs.FileSystem, path: str) -> tuple[list[str], str]:
    """Files under one URI (file, directory or glob) and the directory partitions are relative to."""
    if any(ch in path for ch in "*?["):
        if isinstance(fs, pafs.LocalFileSystem):
            files = sorted(p for p in _glob.glob(path, recursive=True) if _is_data_file(p))
        else:
            prefix = path.split("*")[0].split("?")[0].split("[")[0].rsplit("/", 1)[0]
            found = fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
            files = sorted(
                i.path for i in found if i.type == pafs.FileType.File and fnmatch.fnmatch(i.path, path)
            )
            files = [f for f in files if _is_data_file(f)]
        base = path.split("*")[0].split("?")[0].split("[")[0].rsplit("/", 1)[0]
        return files, base
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise DataError("no such file or directory", path=uri)
    if info.type == pafs.FileType.File:
        return [path], posixpath.dirname(path)
    found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    files = sorted(
        i.path
        for i in found
        if i.type == pafs.FileType.File
        and _is_data_file(i.path)
        and not any(part.startswith(_HIDDEN_PREFIXES) for part in posixpath.relpath(i.path, path).split("/"))
    )
    return files, path


def hive_columns(file: str, base: str) -> dict[str, str]:
    """The ``name=value`` directories between ``base`` and ``file``, as a mapping."""
    rel = posixpath.relpath(posixpath.dirname(file), base)
    parts = [] if rel == "." else rel.split("/")
    return dict(p.split("=", 1) for p in parts if "=" in p)


def file_schema(fs: pafs.FileSystem, path: str, fmt: str) -> tuple[pa.Schema, int | None, dict, int | None]:
    """Schema, row count, per-column null counts and decoded bytes of one file (footer only for Parquet)."""
    try:
        if fmt == "parquet":
            with fs.open_input_file(path) as f:
                meta = pq.ParquetFile(f).metadata
                schema = meta.schema.to_arrow_schema()
                nulls: dict[str, int] = {}
                nbytes = 0
                for rg in range(meta.num_row_groups):
                    group = meta.row_group(rg)
                    nbytes += group.total_byte_size
                    for ci in range(group.num_columns):
                        col = group.column(ci)
                        stats = col.statistics
                        if stats is not None and stats.has_null_count:
                            nulls[col.path_in_schema] = nulls.get(col.path_in_schema, 0) + stats.null_count
                return schema, meta.num_rows, nulls, nbytes
        with fs.open_input_stream(path) as f:
            reader = pacsv.open_csv(f)
            return reader.schema, None, {}, None
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"not a readable {fmt} file: {exc}", path=path) from None


def infer_format(spec: DatasetSpec, files: list[str]) -> str:
    """The spec's format, else CSV when every file is named like one, else Parquet."""
    if spec.format:
        return spec.format
    if all(f.lower().endswith(_CSV_SUFFIXES) for f in files):
        return "csv"
    return "parquet"


def unify_schemas(schemas: list[tuple[str, pa.Schema]]) -> pa.Schema:
    """One schema for all files; a column that is all-null in one file takes the others' type."""
    first_path, merged = schemas[0]
    fields = {f.name: f for f in merged}
    for path, schema in schemas[1:]:
        names = set(schema.names)
        missing = [n for n in fields if n not in names]
        extra = [n for n in schema.names if n not in fields]
        if missing or extra:
            col = (missing or extra)[0]
            what = "lacks" if missing else "has an extra"
            raise DataError(f"schema differs from {first_path}: it {what} column", path=path, column=col)
        for f in schema:
            known = fields[f.name].type
            if known == f.type or pa.types.is_null(f.type):
                continue
            if pa.types.is_null(known):
                fields[f.name] = f
                continue
            raise DataError(f"type {f.type} differs from {known} in {first_path}", path=path, column=f.name)
    return pa.schema([fields[n] for n in merged.names])


def file_with_column(files: list[str], results: list, column: str) -> str:
    """The first of ``files`` whose schema (``results[i][0]`` from ``file_schema``) has ``column``."""
    for f, r in zip(files, results, strict=True):
        if column in r[0].names:
            return f
    return files[0]
