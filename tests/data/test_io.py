"""Finding, validating and streaming datasets: local and S3, multi-file and hive-partitioned."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.data import DataError, DatasetSpec, inspect, load
from app.data.filesystem import S3Options
from tests.data.conftest import write


def _sorted(df: pd.DataFrame, by: str = "id") -> pd.DataFrame:
    return df.sort_values(by).reset_index(drop=True)


def test_multi_file_directory_reads_every_row(ray_session, multi_file_dir, frame):
    info = inspect(DatasetSpec(uri=str(multi_file_dir), target="y", id_column="id"))
    assert len(info.files) == 3
    assert info.num_rows == len(frame)
    assert info.features == ["x", "k", "c"]
    assert info.categorical == ["c"] and info.numeric == ["x", "k"]
    got = _sorted(load(info).to_pandas())
    pd.testing.assert_frame_equal(got[frame.columns.tolist()], frame, check_dtype=False)


def test_glob_and_list_of_uris(ray_session, multi_file_dir, frame):
    by_glob = inspect(DatasetSpec(uri=str(multi_file_dir / "part-[01].parquet"), target="y"))
    assert len(by_glob.files) == 2
    listed = DatasetSpec(
        uri=[str(multi_file_dir / "part-0.parquet"), str(multi_file_dir / "part-2.parquet")], target="y"
    )
    assert load(listed).count() == 400


def test_loading_is_lazy(ray_session, multi_file_dir):
    ds = load(DatasetSpec(uri=str(multi_file_dir), target="y"))
    # Nothing was read yet: a file replaced after load() is what execution sees.
    write(
        pd.DataFrame({"id": [1], "x": [0.5], "k": [1], "c": ["a"], "y": [1]}),
        multi_file_dir / "part-0.parquet",
    )
    assert ds.count() == 1 + 200 + 200


def test_hive_partitions_become_columns(ray_session, tmp_path, frame):
    for region in ("eu", "us"):
        write(frame[frame.c == "a"].assign(y=frame.y), tmp_path / "hive" / f"region={region}" / "p.parquet")
    info = inspect(DatasetSpec(uri=str(tmp_path / "hive"), target="y"))
    assert info.partition_columns == ["region"]
    assert "region" in info.categorical
    got = load(info).to_pandas()
    assert sorted(got.region.unique()) == ["eu", "us"]
    assert len(got) == 2 * (frame.c == "a").sum()


def test_hidden_and_marker_files_are_skipped(ray_session, multi_file_dir):
    (multi_file_dir / "_SUCCESS").write_text("")
    (multi_file_dir / ".part-9.parquet.tmp").write_text("half written")
    assert len(inspect(DatasetSpec(uri=str(multi_file_dir), target="y")).files) == 3


def test_csv_files_are_read(ray_session, tmp_path, frame):
    frame.to_csv(tmp_path / "a.csv", index=False)
    info = inspect(DatasetSpec(uri=str(tmp_path / "a.csv"), target="y"))
    assert info.format == "csv"
    assert load(info).count() == len(frame)


@pytest.mark.s3
def test_s3_partitioned_multi_file(ray_session, s3_endpoint, s3_bucket, frame, monkeypatch):
    for key, value in s3_endpoint.env().items():
        monkeypatch.setenv(key, value)
    fs = S3Options(endpoint_url=s3_endpoint.endpoint_url, region="us-east-1").arrow()
    for region in ("eu", "us"):
        for i in range(2):
            part = frame.iloc[i * 100 : (i + 1) * 100]
            pq.write_table(
                pa.Table.from_pandas(part, preserve_index=False),
                f"{s3_bucket}/data/region={region}/part-{i}.parquet",
                filesystem=fs,
            )
    spec = DatasetSpec(
        uri=f"s3://{s3_bucket}/data/",
        target="y",
        id_column="id",
        s3={"endpoint_url": s3_endpoint.endpoint_url, "region": "us-east-1"},
    )
    info = inspect(spec)
    assert len(info.files) == 4 and info.num_rows == 400
    got = load(info).to_pandas()
    assert len(got) == 400
    assert got.groupby("region").size().to_dict() == {"eu": 200, "us": 200}
    assert sorted(got.id.unique()) == list(range(200))


# --- validation errors name the file and column -------------------------------------------------


def test_missing_target_names_column(multi_file_dir):
    with pytest.raises(DataError, match="column 'label'.*target column not found"):
        inspect(DatasetSpec(uri=str(multi_file_dir), target="label"))


def test_target_all_null_is_refused(tmp_path, frame):
    write(frame.assign(y=pd.Series([None] * len(frame), dtype="float64")), tmp_path / "d" / "p.parquet")
    with pytest.raises(DataError, match="column 'y': target column is null in every row"):
        inspect(DatasetSpec(uri=str(tmp_path / "d"), target="y"))


def test_unsupported_type_names_file_and_column(tmp_path, frame):
    table = pa.Table.from_pandas(frame, preserve_index=False).append_column(
        "tags", pa.array([["a", "b"]] * len(frame))
    )
    pq.write_table(table, tmp_path / "p.parquet")
    with pytest.raises(DataError) as err:
        inspect(DatasetSpec(uri=str(tmp_path / "p.parquet"), target="y"))
    assert (
        "p.parquet" in str(err.value) and "'tags'" in str(err.value) and "unsupported type" in str(err.value)
    )


def test_unsupported_column_can_be_excluded(ray_session, tmp_path, frame):
    table = pa.Table.from_pandas(frame, preserve_index=False).append_column(
        "tags", pa.array([["a"]] * len(frame))
    )
    pq.write_table(table, tmp_path / "p.parquet")
    info = inspect(DatasetSpec(uri=str(tmp_path / "p.parquet"), target="y", exclude=["tags"]))
    assert "tags" not in info.features
    assert "tags" not in load(info).schema().names


def test_empty_dataset_is_refused(tmp_path, frame):
    write(frame.iloc[:0], tmp_path / "e" / "p.parquet")
    with pytest.raises(DataError, match="dataset is empty"):
        inspect(DatasetSpec(uri=str(tmp_path / "e"), target="y"))


def test_no_files_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no data files found"):
        inspect(DatasetSpec(uri=str(tmp_path / "empty"), target="y"))
    with pytest.raises(DataError, match="no such file"):
        inspect(DatasetSpec(uri=str(tmp_path / "missing"), target="y"))


def test_corrupt_file_is_named_and_nothing_is_dropped(multi_file_dir):
    (multi_file_dir / "part-1.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError) as err:
        inspect(DatasetSpec(uri=str(multi_file_dir), target="y"))
    assert "part-1.parquet" in str(err.value)
    assert "not a readable parquet file" in str(err.value)


def test_mismatched_schemas_name_both_files_and_the_column(tmp_path, frame):
    write(frame, tmp_path / "m" / "a.parquet")
    write(frame.assign(k=frame.k.astype(str)), tmp_path / "m" / "b.parquet")
    with pytest.raises(DataError) as err:
        inspect(DatasetSpec(uri=str(tmp_path / "m"), target="y"))
    message = str(err.value)
    assert "b.parquet" in message and "a.parquet" in message and "'k'" in message


def test_missing_column_in_one_file(tmp_path, frame):
    write(frame, tmp_path / "m" / "a.parquet")
    write(frame.drop(columns=["x"]), tmp_path / "m" / "b.parquet")
    with pytest.raises(DataError, match="b.parquet.*'x'.*lacks"):
        inspect(DatasetSpec(uri=str(tmp_path / "m"), target="y"))


def test_all_null_column_in_one_file_takes_the_others_type(ray_session, tmp_path, frame):
    write(frame.iloc[:300], tmp_path / "n" / "a.parquet")
    nulls = frame.iloc[300:].assign(x=None)
    pq.write_table(pa.Table.from_pandas(nulls, preserve_index=False), tmp_path / "n" / "b.parquet")
    info = inspect(DatasetSpec(uri=str(tmp_path / "n"), target="y"))
    assert info.schema.field("x").type == pa.float64()
    assert load(info).count() == len(frame)


def test_spec_rejects_a_column_with_two_roles():
    with pytest.raises(ValueError, match="two roles"):
        DatasetSpec(uri="x", target="y", id_column="y")
    with pytest.raises(ValueError, match="extra"):
        DatasetSpec(uri="x", target="y", colour="red")
