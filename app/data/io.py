"""Find, validate and stream a dataset: ``inspect`` checks every file's schema, ``load`` streams it.

Validation reads only Parquet footers or a CSV's first block (``app.data.files``), so it is cheap next
to the data, and every error names the file and the column. ``load`` returns a lazy Ray Dataset:
nothing is read on the driver and nothing is materialised.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from app.data import csv_types
from app.data.errors import DataError
from app.data.files import expand, file_schema, file_with_column, hive_columns, infer_format, unify_schemas
from app.data.filesystem import filesystem_for
from app.data.spec import DatasetSpec


@dataclass(frozen=True)
class DatasetInfo:
    """What ``inspect`` found: the files, their common schema, and the role of every column."""

    spec: DatasetSpec
    files: list[str]
    filesystem: pafs.FileSystem
    format: str
    schema: pa.Schema
    num_rows: int | None
    features: list[str]
    categorical: list[str]
    numeric: list[str]
    datetime: list[str]
    partition_columns: list[str] = field(default_factory=list)
    base_dir: str | None = None
    data_bytes: int | None = None  # decoded size from the Parquet footers; None for CSV
    target_nulls: int | None = None  # rows without a target, from the Parquet footers; None for CSV
    # Text columns of numbers (and missing-value markers), read as numbers: name -> markers seen.
    text_numbers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Columns ``load`` reads: the features and the role columns."""
        return self.features + [c for c in self.spec.role_columns if c not in self.features]


_SUPPORTED = "integer, floating point, boolean, string, dictionary, decimal, date and timestamp"


def _kind(dtype: pa.DataType) -> str | None:
    """numeric / categorical / datetime, or None for a type the models cannot use."""
    if pa.types.is_dictionary(dtype):
        return "categorical" if _kind(dtype.value_type) == "categorical" else None
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_boolean(dtype):
        return "numeric"
    if pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "categorical"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return "datetime"
    if pa.types.is_null(dtype):
        return "numeric"
    return None


def inspect(spec: DatasetSpec, *, max_threads: int = 16) -> DatasetInfo:
    """Find the dataset's files, check that they agree and that the target can be learnt.

    Raises:
        DataError: no files, an unreadable file, schemas that differ, a missing or all-null target,
            an unsupported feature type, or no rows at all; the message names the file and column.

    Long on purpose: one pass over the footers checks every file and column in order and names the first
    bad one; split, each step would carry the same running state.
    """
    files: list[str] = []
    fs: pafs.FileSystem | None = None
    bases: set[str] = set()
    for uri in spec.uris:
        fs_u, path = filesystem_for(uri, spec.s3_options())
        if fs is not None and type(fs_u) is not type(fs):
            raise DataError("mixes local and s3:// files", path=uri)
        fs = fs_u
        found, base = expand(uri, fs_u, path)
        if not found:
            raise DataError("no data files found", path=uri)
        files.extend(found)
        bases.add(base)
    assert fs is not None
    fmt = infer_format(spec, files)
    with ThreadPoolExecutor(max_workers=min(max_threads, len(files))) as pool:
        results = list(pool.map(lambda f: file_schema(fs, f, fmt), files))
    schema = unify_schemas([(f, r[0]) for f, r in zip(files, results, strict=True)])
    base_dir = bases.pop() if len(bases) == 1 else None
    partition_cols: list[str] = []
    if spec.partitioning == "hive" and base_dir is not None:
        partition_cols = list(hive_columns(files[0], base_dir))
        for name in partition_cols:
            if name not in schema.names:
                schema = schema.append(pa.field(name, pa.string()))
    counts = [r[1] for r in results]
    num_rows = None if any(c is None for c in counts) else sum(counts)
    if num_rows == 0:
        raise DataError("dataset is empty: no rows in any file", path=spec.uris[0])
    display = spec.uris[0] if len(spec.uris) == 1 else f"{spec.uris[0]} (+{len(spec.uris) - 1})"
    if spec.target not in schema.names:
        raise DataError(
            f"target column not found; columns are {schema.names}", path=display, column=spec.target
        )
    null_counts = [r[2].get(spec.target) for r in results]
    if num_rows is not None and all(n is not None for n in null_counts) and sum(null_counts) == num_rows:
        raise DataError("target column is null in every row", path=display, column=spec.target)
    for role in spec.role_columns:
        if role not in schema.names:
            raise DataError("column not found", path=display, column=role)
    roles = set(spec.role_columns) | set(spec.exclude)
    features = list(spec.features) if spec.features else [n for n in schema.names if n not in roles]
    kinds: dict[str, str] = {}
    for name in features:
        if name not in schema.names:
            raise DataError("feature column not found", path=display, column=name)
        kind = _kind(schema.field(name).type)
        if kind is None:
            raise DataError(
                f"unsupported type {schema.field(name).type} (supported: {_SUPPORTED})",
                path=file_with_column(files, results, name),
                column=name,
            )
        kinds[name] = kind
    if not features:
        raise DataError("no feature columns left after the target and role columns", path=display)
    for name in spec.categorical or []:  # e.g. integer codes the user knows to be categories
        kinds[name] = "categorical"
    text_numbers: dict[str, list[str]] = {}
    if fmt == "parquet":
        candidates = [n for n in features if kinds[n] == "categorical" and n not in (spec.categorical or [])]
        text_numbers = numbers_in_text(fs, files[0], [n for n in candidates if n in results[0][0].names])
        for name in text_numbers:
            kinds[name] = "numeric"
            schema = schema.set(schema.get_field_index(name), pa.field(name, pa.float64()))
    return DatasetInfo(
        spec=spec,
        files=files,
        filesystem=fs,
        format=fmt,
        schema=schema,
        num_rows=num_rows,
        features=features,
        categorical=[n for n in features if kinds[n] == "categorical"],
        numeric=[n for n in features if kinds[n] == "numeric"],
        datetime=[n for n in features if kinds[n] == "datetime"],
        partition_columns=partition_cols,
        base_dir=base_dir,
        data_bytes=None if any(r[3] is None for r in results) else sum(r[3] for r in results),
        target_nulls=sum(null_counts) if all(n is not None for n in null_counts) else None,
        text_numbers=text_numbers,
    )


# Rows of the first file that decide whether a text column holds numbers.
_SAMPLE_ROWS = 10_000


def numbers_in_text(fs: pafs.FileSystem, path: str, columns: list[str]) -> dict[str, list[str]]:
    """Which text ``columns`` hold only numbers and missing-value markers in the first rows of ``path``
    (a Parquet file written from a CSV typed by its reader), with the markers seen."""
    string_columns = []
    with fs.open_input_file(path) as f:
        pf = pq.ParquetFile(f)
        arrow = pf.schema_arrow
        string_columns = [
            c
            for c in columns
            if pa.types.is_string(arrow.field(c).type) or pa.types.is_large_string(arrow.field(c).type)
        ]
        if not string_columns or pf.metadata.num_rows == 0:
            return {}
        batch = next(pf.iter_batches(batch_size=_SAMPLE_ROWS, columns=string_columns), None)
    if batch is None:
        return {}
    tokens = csv_types.na_tokens()
    found = {}
    for name in string_columns:
        if csv_types.numeric_type(batch.column(name), tokens) is not None:
            text = pc.utf8_trim_whitespace(pc.drop_null(batch.column(name)))
            seen = pc.unique(text.filter(pc.is_in(text, value_set=pa.array(tokens, pa.string()))))
            found[name] = sorted(seen.to_pylist())
    return found


def _numbers_from_text(batch: pa.Table, columns: list[str]) -> pa.Table:
    """The ``columns`` of one batch, text holding numbers, as float64 (markers as nulls)."""
    tokens = csv_types.na_tokens()
    for name in columns:
        try:
            values, _ = csv_types.to_numeric(batch[name], pa.float64(), tokens, name=name)
        except csv_types.NumberParseError as exc:
            raise DataError(
                f"{exc} (the first rows of the column held numbers only, so it is read as numbers)",
                column=name,
            ) from None
        batch = batch.set_column(batch.schema.get_field_index(name), name, values)
    return batch


# Decoded bytes per read task: large enough that a task's fixed cost (~ms) vanishes next to its
# work, small enough that a block streams through the object store without spilling.
_BLOCK_BYTES = 128 * 1024 * 1024


def read_blocks(info: DatasetInfo, cluster_cpus: int | None = None) -> int | None:
    """How many read tasks ``load`` asks for: two per CPU, more when the data is large.

    Ray Data's default targets 200 blocks whatever the size, which splits a few files into many small
    pieces each and makes the driver schedule hundreds of tiny tasks.
    """
    if info.format != "parquet" or info.data_bytes is None:
        return None
    if cluster_cpus is None:
        import ray

        cpus = ray.cluster_resources().get("CPU", 1) if ray.is_initialized() else 1
        cluster_cpus = max(1, int(cpus))
    return max(2 * cluster_cpus, -(-info.data_bytes // _BLOCK_BYTES))


def load(spec: DatasetSpec | DatasetInfo, *, override_num_blocks: int | None = None):
    """A lazy, streaming ``ray.data.Dataset`` of the spec's feature and role columns.

    Parquet goes through Ray Data's V1 reader: ``inspect`` has already read every footer, and the
    V2 reader (the 2.60 default) starts a pool of footer-reading actors on every execution, a
    fixed cost even for one small file. The dataset runs without per-operator resource
    reservation: a read feeding one consumer otherwise gets half the CPUs (one task at a time on
    two cores). Object-store backpressure stays on, so larger-than-memory data still streams.

    Example:
        >>> ds = load(DatasetSpec(uri="data/train/", target="y"))  # doctest: +SKIP
        >>> for batch in ds.iter_batches(batch_format="numpy"): ...  # doctest: +SKIP
    """
    import ray.data
    from ray.data import DataContext
    from ray.data.datasource import Partitioning

    info = spec if isinstance(spec, DatasetInfo) else inspect(spec)
    partitioning = (
        Partitioning("hive", base_dir=info.base_dir, filesystem=info.filesystem)
        if info.partition_columns
        else None
    )
    if info.format == "parquet":
        file_cols = [c for c in info.columns if c not in info.partition_columns]
        ctx = DataContext.get_current()
        v2, ctx.use_datasource_v2 = ctx.use_datasource_v2, False
        try:
            ds = ray.data.read_parquet(
                info.files,
                filesystem=info.filesystem,
                columns=file_cols + info.partition_columns if info.partition_columns else file_cols,
                partitioning=partitioning,
                override_num_blocks=override_num_blocks or read_blocks(info),
            )
        finally:
            ctx.use_datasource_v2 = v2
    else:
        ds = ray.data.read_csv(
            info.files,
            filesystem=info.filesystem,
            partitioning=partitioning,
            override_num_blocks=override_num_blocks,
        )
    ds.context.op_resource_reservation_enabled = False
    if info.format != "parquet" or set(info.schema.names) != set(info.columns):
        ds = ds.select_columns(info.columns)
    if info.text_numbers:
        ds = ds.map_batches(
            _numbers_from_text,
            fn_kwargs={"columns": sorted(info.text_numbers)},
            batch_format="pyarrow",
            zero_copy_batch=True,
        )
    return ds


def iter_numpy(ds, *, batch_size: int | None = None, prefetch_batches: int = 2):
    """Yield the dataset as dicts of numpy arrays, one per block unless ``batch_size`` is set.

    Blocks come through as Arrow and are viewed as numpy without a copy where the type allows
    (numeric columns without nulls); re-batching to a fixed size is skipped by default because it
    concatenates blocks, which costs a copy that consumers such as ``xgboost.DataIter`` do not need.
    """
    import numpy as np

    for table in ds.iter_batches(
        batch_size=batch_size, batch_format="pyarrow", prefetch_batches=prefetch_batches
    ):
        out = {}
        for name in table.column_names:
            column = table.column(name)
            chunk = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
            out[name] = np.asarray(chunk.to_numpy(zero_copy_only=False))
        yield out
