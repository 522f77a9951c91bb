"""The output side of a CSV-to-Parquet conversion, local or on S3: the progress manifest, files staged
under hidden names and moved into place chunk by chunk, hive partitions, and clean-up on resume."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from app.data.filesystem import S3Options, filesystem_for

MANIFEST = "_progress.json"
SUCCESS = "_SUCCESS"
_PART = re.compile(r"part-(\d+)\.parquet")
_TMP = ".tmp-"  # readers skip names starting with "." or "_", so a staged file is never taken for data


class InputError(Exception):
    """A problem with the input or its conversion; ``csv_to_parquet`` raises it as a DataError on the file."""

    def __init__(self, message: str, column: str | None = None):
        super().__init__(message)
        self.column = column


class OutDir:
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
            raise InputError(
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
        parts = [(name, table)] if partition_by is None else partitions(table, partition_by, name)
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


def partitions(table: pa.Table, column: str, name: str) -> list[tuple[str, pa.Table]]:
    """``COL=value/name`` and the rows with that value, in file order (the sort is stable)."""
    if column not in table.column_names:
        raise InputError("no such column to partition by", column)
    ordered = table.take(pc.sort_indices(table, [(column, "ascending")]))
    runs = pc.run_end_encode(ordered[column].combine_chunks())
    ends = runs.run_ends.to_pylist()
    parts = []
    for value, start, end in zip(runs.values.to_pylist(), [0, *ends[:-1]], ends, strict=True):
        key = "__HIVE_DEFAULT_PARTITION__" if value is None else quote(str(value), safe="")
        parts.append((f"{column}={key}/{name}", ordered.slice(start, end - start).drop_columns([column])))
    return parts
