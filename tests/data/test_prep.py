"""csv_to_parquet: chunked Parquet output equal to pandas' read_csv, resumable, local, S3 and on Ray."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from app.data import prep_output
from app.data.errors import DataError
from app.data.filesystem import S3Options
from app.data.prep import MANIFEST, SUCCESS, csv_to_parquet, csv_to_parquet_many, load_transform
from tests.data import prep_transforms

REPO = Path(__file__).resolve().parents[2]
SMALL_BLOCK = 1 << 10  # several reader blocks per chunk and chunks across blocks, on tiny files


def _frame(n: int = 100) -> pd.DataFrame:
    i = np.arange(n)
    return pd.DataFrame(
        {
            "id": i,
            "x": i * 0.5,
            "cat": np.array(["a", "b c", "d"])[i % 3],
            "flag": i % 2 == 0,
            "maybe": np.where(i % 4 == 0, np.nan, i * 1.5),
            "note": np.where(i % 5 == 0, None, np.char.add("n", i.astype(str))),
        }
    )


def _csv(tmp_path: Path, df: pd.DataFrame, name: str = "data.csv") -> str:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


def _read(files: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _part_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, 10_000])
def test_output_equals_pandas_read_csv_in_row_order(tmp_path, chunk_rows):
    src = _csv(tmp_path, _frame())

    result = csv_to_parquet(src, str(tmp_path / "out"), chunk_rows=chunk_rows, block_size=SMALL_BLOCK)

    n_files = -(-100 // chunk_rows)
    assert (result.rows, result.chunks, result.resumed_chunks) == (100, n_files, 0)
    assert [Path(f).name for f in result.files] == [f"part-{i:05d}.parquet" for i in range(n_files)]
    assert len({pq.read_schema(f) for f in result.files}) == 1
    pdt.assert_frame_equal(_read(result.files), pd.read_csv(src))
    assert (tmp_path / "out" / SUCCESS).exists()


def test_partition_by_writes_hive_dirs_that_read_back_to_the_same_rows(tmp_path):
    df = _frame(60)
    df.loc[df["id"] % 7 == 0, "cat"] = None
    src = _csv(tmp_path, df)
    out = tmp_path / "out"

    result = csv_to_parquet(src, str(out), chunk_rows=25, partition_by="cat")

    assert {p.name for p in out.iterdir() if p.is_dir()} == {
        "cat=a",
        "cat=b%20c",
        "cat=d",
        "cat=__HIVE_DEFAULT_PARTITION__",
    }
    assert len(result.files) == 3 * 4
    got = ds.dataset(str(out), format="parquet", partitioning="hive").to_table().to_pandas()
    got = got.sort_values("id").reset_index(drop=True)[list(df.columns)]
    expected = pd.read_csv(src)
    pdt.assert_frame_equal(got, expected, check_dtype=False)


@pytest.mark.parametrize("transform", [prep_transforms.add_double, "tests.data.prep_transforms:add_double"])
def test_transform_is_applied_to_each_chunk(tmp_path, transform):
    src = _csv(tmp_path, _frame())

    result = csv_to_parquet(src, str(tmp_path / "out"), chunk_rows=30, transform=transform)

    expected = prep_transforms.add_double(pd.read_csv(src)).reset_index(drop=True)
    pdt.assert_frame_equal(_read(result.files), expected)
    assert result.rows == len(expected)


def test_resume_after_a_crash_writes_only_the_unfinished_chunks(tmp_path):
    src = _csv(tmp_path, _frame())
    out = tmp_path / "out"
    crash = prep_transforms.FailOnce(at_row=50)

    with pytest.raises(DataError, match="FailOnce.*chunk 2"):
        csv_to_parquet(src, str(out), chunk_rows=25, transform=crash)
    assert _part_files(out) == ["part-00000.parquet", "part-00001.parquet"]
    assert not (out / SUCCESS).exists()
    before = {p: (os.stat(out / p).st_mtime_ns, os.stat(out / p).st_ino) for p in _part_files(out)}

    result = csv_to_parquet(src, str(out), chunk_rows=25, transform=crash)

    assert (result.chunks, result.resumed_chunks, result.rows) == (4, 2, 100)
    assert {p: (os.stat(out / p).st_mtime_ns, os.stat(out / p).st_ino) for p in before} == before
    pdt.assert_frame_equal(_read(result.files), pd.read_csv(src))


def test_a_finished_output_is_left_alone(tmp_path):
    src = _csv(tmp_path, _frame())
    out = tmp_path / "out"
    first = csv_to_parquet(src, str(out), chunk_rows=40)
    stamps = {f: os.stat(f).st_mtime_ns for f in first.files}

    again = csv_to_parquet(src, str(out), chunk_rows=40)

    assert (again.files, again.chunks, again.resumed_chunks) == (first.files, 3, 3)
    assert {f: os.stat(f).st_mtime_ns for f in again.files} == stamps


def test_resume_with_other_settings_or_input_is_refused(tmp_path):
    src = _csv(tmp_path, _frame())
    out = str(tmp_path / "out")
    csv_to_parquet(src, out, chunk_rows=40)

    with pytest.raises(DataError, match="chunk_rows was 40, now 30"):
        csv_to_parquet(src, out, chunk_rows=30)
    _csv(tmp_path, _frame(120))
    with pytest.raises(DataError, match="size was"):
        csv_to_parquet(src, out, chunk_rows=40)

    result = csv_to_parquet(src, out, chunk_rows=30, resume=False)
    assert (result.chunks, result.resumed_chunks, result.rows) == (4, 0, 120)
    assert _part_files(tmp_path / "out") == [f"part-{i:05d}.parquet" for i in range(4)]


def test_a_failed_write_leaves_no_part_file_and_no_manifest_entry(tmp_path, monkeypatch):
    src = _csv(tmp_path, _frame())
    out = tmp_path / "out"
    real_write = prep_output.pq.write_table
    calls = []

    def write_then_break(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 2:  # half a file, then the disk "fails"
            with kwargs["filesystem"].open_output_stream(where) as f:
                f.write(b"PAR1 half")
            raise OSError("disk full")
        real_write(table, where, **kwargs)

    monkeypatch.setattr(prep_output.pq, "write_table", write_then_break)
    with pytest.raises(OSError, match="disk full"):
        csv_to_parquet(src, str(out), chunk_rows=40)

    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "part-00000.parquet"]
    assert [c["index"] for c in json.loads((out / MANIFEST).read_text())["chunks"]] == [0]
    assert ds.dataset(str(out), format="parquet").count_rows() == 40


def test_an_unparsable_row_names_the_file_and_chunk_and_marks_nothing_complete(tmp_path):
    rows = [f"{i},{i}" if i != 250 else "250,1,extra" for i in range(300)]
    src = tmp_path / "bad.csv"
    src.write_text("id,x\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"

    with pytest.raises(DataError, match=r"bad\.csv.*chunk 2, line 252 has 3 fields, the header has 2"):
        csv_to_parquet(str(src), str(out), chunk_rows=100, block_size=256)

    chunks = json.loads((out / MANIFEST).read_text())["chunks"]
    assert [c["index"] for c in chunks] == [0, 1]
    assert _part_files(out) == ["part-00000.parquet", "part-00001.parquet"]


def test_a_missing_input_names_the_file(tmp_path):
    with pytest.raises(DataError, match="absent.csv: no such file"):
        csv_to_parquet(str(tmp_path / "absent.csv"), str(tmp_path / "out"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "not of the form 'module:function'"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("tests.data.prep_transforms:missing", "has no attribute 'missing'"),
        ("tests.data.prep_transforms:NOT_CALLABLE", "is a int, not a function"),
    ],
)
def test_a_bad_transform_spec_is_explained(spec, message):
    with pytest.raises(DataError, match=message):
        load_transform(spec)


def test_a_transform_that_returns_no_dataframe_is_named(tmp_path):
    src = _csv(tmp_path, _frame(10))
    with pytest.raises(DataError, match="returns_list returned list on chunk 0"):
        csv_to_parquet(src, str(tmp_path / "out"), transform=prep_transforms.returns_list)


def test_a_chunk_that_does_not_fit_the_first_chunks_schema_names_column_and_chunk(tmp_path):
    src = _csv(tmp_path, _frame(30))
    with pytest.raises(DataError, match=r"column 'id': chunk 1: cannot cast"):
        csv_to_parquet(src, str(tmp_path / "out"), chunk_rows=10, transform=prep_transforms.breaks_types)


@pytest.mark.parametrize("block_size", [SMALL_BLOCK, 16 << 20])
def test_a_column_empty_in_the_first_chunk_keeps_one_type(tmp_path, block_size):
    df = _frame(200)
    df["late"] = np.where(df["id"] < 120, np.nan, df["id"] / 4)
    src = _csv(tmp_path, df)

    result = csv_to_parquet(src, str(tmp_path / "out"), chunk_rows=50, block_size=block_size)

    assert {str(pq.read_schema(f).field("late").type) for f in result.files} == {"double"}
    pdt.assert_frame_equal(_read(result.files), pd.read_csv(src))


def test_a_later_value_that_does_not_fit_the_inferred_type_names_the_column(tmp_path):
    src = tmp_path / "data.csv"
    src.write_text("id,n\n" + "".join(f"{i},{i}\n" for i in range(300)) + "300,2.5\n")
    with pytest.raises(DataError, match=r"data\.csv, column 'n'.*'2.5' is not an integer"):
        csv_to_parquet(str(src), str(tmp_path / "out"), chunk_rows=100, block_size=256)


def test_memory_holds_a_few_blocks_not_the_file(tmp_path):
    i = np.arange(100_000)
    src = _csv(tmp_path, pd.DataFrame({"id": i, "x": i * 0.5, "s": np.char.add("name_", i.astype(str))}))
    block = 64 << 10
    allocated = []

    def slow_consumer(df: pd.DataFrame) -> pd.DataFrame:  # arrow would prefetch the whole file meanwhile
        time.sleep(0.005)
        allocated.append(pa.total_allocated_bytes())
        return df

    csv_to_parquet(src, str(tmp_path / "out"), chunk_rows=2000, block_size=block, transform=slow_consumer)

    assert os.path.getsize(src) > 32 * block
    assert max(allocated) < 16 * block


@pytest.mark.s3
def test_s3_input_and_output_through_moto(s3_endpoint, s3_bucket, monkeypatch):
    for key, value in s3_endpoint.env().items():
        monkeypatch.setenv(key, value)
    df = _frame(50)
    client = s3_endpoint.client()
    client.put_object(Bucket=s3_bucket, Key="raw/data.csv", Body=df.to_csv(index=False).encode())
    s3 = S3Options(endpoint_url=s3_endpoint.endpoint_url, region="us-east-1")
    src, out = f"s3://{s3_bucket}/raw/data.csv", f"s3://{s3_bucket}/parquet"

    result = csv_to_parquet(src, out, chunk_rows=20, s3=s3)
    again = csv_to_parquet(src, out, chunk_rows=20, s3=s3)

    listed = client.list_objects_v2(Bucket=s3_bucket, Prefix="parquet/")["Contents"]
    keys = sorted(o["Key"] for o in listed if not o["Key"].endswith("/"))  # pyarrow leaves a "dir/" marker
    assert keys == sorted(
        f"parquet/{n}" for n in (MANIFEST, SUCCESS, *(f"part-{i:05d}.parquet" for i in range(3)))
    )
    assert (result.chunks, again.resumed_chunks) == (3, 3)
    got = (
        ds.dataset(out.removeprefix("s3://"), filesystem=s3.arrow(), format="parquet").to_table().to_pandas()
    )
    expected = pd.read_csv(io.StringIO(df.to_csv(index=False)))
    pdt.assert_frame_equal(got.sort_values("id").reset_index(drop=True), expected)


def test_many_files_convert_in_parallel_on_ray(ray_session, tmp_path):
    sources = [_csv(tmp_path, _frame(30 + 10 * i), f"f{i}.csv") for i in range(3)]
    out = tmp_path / "out"

    results = csv_to_parquet_many(sources, str(out), chunk_rows=15)

    assert [r.input_path for r in results] == sources
    assert [r.rows for r in results] == [30, 40, 50]
    for i, (src, r) in enumerate(zip(sources, results, strict=True)):
        assert r.out_dir == str(out / f"f{i}")
        pdt.assert_frame_equal(_read(r.files), pd.read_csv(src))


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "app.cli", "prep", "csv-to-parquet", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_converts_a_file(tmp_path):
    src = _csv(tmp_path, _frame())
    out = tmp_path / "out"

    done = _cli(src, str(out), "--chunk-rows", "40", "--transform", "tests.data.prep_transforms:add_double")

    assert done.returncode == 0, done.stderr
    assert f"{src}: 66 rows in 3 chunk(s) -> {out}" in done.stdout
    assert _part_files(out) == [f"part-{i:05d}.parquet" for i in range(3)]


def test_cli_reports_a_missing_input_with_exit_code_2(tmp_path):
    done = _cli(str(tmp_path / "absent.csv"), str(tmp_path / "out"))

    assert done.returncode == 2
    assert "absent.csv: no such file" in done.stderr
