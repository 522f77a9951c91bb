"""The hash split: deterministic across runs and block counts, disjoint, complete, close to the fractions."""

import pyarrow as pa
import pytest

from app.data import DatasetSpec, load, sample, split
from app.data.split import row_unit_interval


def _ids(ds) -> set[int]:
    return set(ds.to_pandas()["id"].tolist())


def test_split_is_disjoint_complete_and_near_the_fractions(ray_session, multi_file_dir, frame):
    ds = load(DatasetSpec(uri=str(multi_file_dir), target="y", id_column="id"))
    s = split(ds, valid_fraction=0.2, test_fraction=0.1, key_columns=["id"])
    train, valid, test = _ids(s.train), _ids(s.valid), _ids(s.test)
    assert not (train & valid) and not (train & test) and not (valid & test)
    assert train | valid | test == set(frame["id"])
    assert abs(len(valid) / len(frame) - 0.2) < 0.05
    assert abs(len(test) / len(frame) - 0.1) < 0.05


def test_split_is_the_same_for_any_number_of_blocks(ray_session, multi_file_dir):
    ds = load(DatasetSpec(uri=str(multi_file_dir), target="y", id_column="id"))
    one = split(ds.repartition(1), valid_fraction=0.25, key_columns=["id"])
    seven = split(ds.repartition(7), valid_fraction=0.25, key_columns=["id"])
    assert _ids(one.valid) == _ids(seven.valid)
    # Hashing whole rows (no id column) is block-independent too.
    assert _ids(split(ds.repartition(2), valid_fraction=0.25).valid) == _ids(
        split(ds.repartition(5), valid_fraction=0.25).valid
    )


def test_split_is_stable_across_runs_and_changes_with_the_seed(frame):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    first = row_unit_interval(table, key_columns=["id"], seed=3)
    again = row_unit_interval(table, key_columns=["id"], seed=3)
    other = row_unit_interval(table, key_columns=["id"], seed=4)
    assert (first == again).all()
    assert (first != other).mean() > 0.99
    # A row's value depends on its own key only, not on which other rows share its batch.
    assert (row_unit_interval(table.slice(100, 50), key_columns=["id"], seed=3) == first[100:150]).all()
    # Fixed values: the split of a stored dataset does not move between releases.
    ids = pa.table({"id": pa.array(range(5), pa.int64())})
    assert row_unit_interval(ids, key_columns=["id"], seed=3).round(8).tolist() == [
        0.09418482,
        0.01634625,
        0.49385277,
        0.15720631,
        0.835437,
    ]


def test_sample_is_deterministic_and_near_the_fraction(ray_session, multi_file_dir, frame):
    ds = load(DatasetSpec(uri=str(multi_file_dir), target="y", id_column="id"))
    a = _ids(sample(ds.repartition(2), 0.3, seed=1, key_columns=["id"]))
    b = _ids(sample(ds.repartition(6), 0.3, seed=1, key_columns=["id"]))
    assert a == b
    assert abs(len(a) / len(frame) - 0.3) < 0.06
    assert a != _ids(sample(ds, 0.3, seed=2, key_columns=["id"]))


def test_bad_fractions_are_refused(ray_session, multi_file_dir):
    ds = load(DatasetSpec(uri=str(multi_file_dir), target="y"))
    with pytest.raises(ValueError, match="fractions"):
        split(ds, valid_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="frac"):
        sample(ds, 0.0)
