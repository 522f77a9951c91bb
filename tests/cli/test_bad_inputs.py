"""Bad input to ``automl prep``, ``fit``, ``predict`` and the config loader, one row per case: each exits
2 with one line naming the file, column or setting, and leaves everything already on disk as it was.
Every case fails before Ray starts."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.data.synthetic import make_frame

from .conftest import automl, features_frame, snapshot


@dataclass(frozen=True)
class Env:
    """What a case's setup can use: the test's directory and model directories to damage."""

    tmp: Path
    model_dir: Callable[..., Path]
    ensemble_dir: Path | None = None


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Env], list[str]]  # builds the input and returns the command line
    names: tuple[str, ...]  # in the error line ("{tmp}" is the test directory)
    code: int = 2


# --- inputs -------------------------------------------------------------------------------------------


def _csv(env: Env, text: str | bytes, name: str = "data.csv") -> str:
    path = env.tmp / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def _parquet(env: Env, table: pa.Table, name: str = "data.parquet") -> str:
    path = env.tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return str(path)


def _training(env: Env, name: str = "train.parquet", **columns) -> str:
    frame = make_frame(200, task="binary", seed=1)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for column, values in columns.items():
        if values is None:
            table = table.drop_columns([column])
        else:
            table = table.set_column(table.schema.get_field_index(column), column, values)
    return _parquet(env, table, name)


def _earlier_run(env: Env) -> str:
    """A run folder from an earlier fit: what a failed rerun must leave alone."""
    run = env.tmp / "run"
    (run / "model").mkdir(parents=True)
    record = {"spec": {"uri": str(env.tmp / "old.parquet"), "target": "y"}, "settings": {}, "task": None}
    (run / "fit.json").write_text(json.dumps(record))
    (run / "leaderboard.csv").write_text("rank,trial_id\n1,a\n")
    (run / "model" / "metadata.json").write_text("{}")
    return str(run)


def _fit(env: Env, data: str, *extra: str) -> list[str]:
    return ["fit", data, "--target", "y", "--out", _earlier_run(env), *extra]


def _features(env: Env, name: str = "new.parquet", **columns) -> str:
    table = pa.Table.from_pandas(features_frame(50), preserve_index=False)
    for column, values in columns.items():
        if values is None:
            table = table.drop_columns([column])
        else:
            table = table.set_column(table.schema.get_field_index(column), column, values)
    return _parquet(env, table, name)


def _predict(env: Env, model: Path, data: str | None = None) -> list[str]:
    out = env.tmp / "preds.parquet"
    out.write_bytes(b"earlier predictions")
    return ["predict", str(model), data or _features(env), "--out", str(out)]


def _damaged(env: Env, family: str, damage: Callable[[Path], None]) -> list[str]:
    model = env.model_dir(family)
    damage(model)
    return _predict(env, model)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _config(env: Env, text: str) -> list[str]:
    path = env.tmp / "automl.yaml"
    path.write_text(text)
    return ["train", _training(env), "--target", "y", "--config", str(path), "--out", str(env.tmp / "m")]


def _converted(env: Env) -> str:
    """An output directory holding an earlier, finished conversion."""
    out = str(env.tmp / "pq")
    assert automl("prep", "csv-to-parquet", _csv(env, "a,b\n1,2\n", "old.csv"), out).exit_code == 0
    return out


GOOD_CSV = "a,b,c\n1,x,3\n2,y,4\n"

PREP = [
    Case(
        "prep-missing-file",
        lambda e: ["prep", "csv-to-parquet", str(e.tmp / "absent.csv"), str(e.tmp / "o")],
        ("absent.csv", "no such file"),
    ),
    Case(
        "prep-input-is-a-directory",
        lambda e: ["prep", "csv-to-parquet", str(e.tmp), str(e.tmp / "o")],
        ("{tmp}", "not a file"),
    ),
    Case(
        "prep-glob-matches-nothing",
        lambda e: ["prep", "csv-to-parquet", str(e.tmp / "*.csv"), str(e.tmp / "o")],
        ("*.csv",),
    ),
    Case(
        "prep-row-with-an-extra-field",
        lambda e: ["prep", "csv-to-parquet", _csv(e, "a,b,c\n1,2,3\n4,5,6,7\n"), str(e.tmp / "o")],
        ("data.csv", "line 3 has 4 fields, the header has 3"),
    ),
    Case(
        "prep-row-with-a-missing-field",
        lambda e: ["prep", "csv-to-parquet", _csv(e, "a,b,c\n1,2,3\n4,5,6\n7,8\n"), str(e.tmp / "o")],
        ("data.csv", "line 4 has 2 fields, the header has 3"),
    ),
    Case(
        "prep-invalid-utf8",
        lambda e: ["prep", "csv-to-parquet", _csv(e, b"a,name\n1,ok\n2,b\xffd\n"), str(e.tmp / "o")],
        ("data.csv", "column 'name'", "line 3", "--encoding-errors replace"),
    ),
    Case(
        "prep-invalid-utf8-in-the-header",
        lambda e: ["prep", "csv-to-parquet", _csv(e, b"a,n\xe9\n1,2\n"), str(e.tmp / "o")],
        ("data.csv", "line 1", "UTF-8"),
    ),
    Case(
        "prep-latin1-file",
        lambda e: [
            "prep",
            "csv-to-parquet",
            _csv(e, "id,city\n1,Z\u00fcrich\n".encode("latin-1")),
            str(e.tmp / "o"),
        ],
        ("data.csv", "line 2", "column 'city'"),
    ),
    Case(
        "prep-unknown-encoding-errors",
        lambda e: [
            "prep",
            "csv-to-parquet",
            _csv(e, GOOD_CSV),
            str(e.tmp / "o"),
            "--encoding-errors",
            "ignore",
        ],
        ("--encoding-errors", "'ignore'"),
    ),
    Case(
        "prep-partition-by-unknown-column",
        lambda e: ["prep", "csv-to-parquet", _csv(e, GOOD_CSV), str(e.tmp / "o"), "--partition-by", "region"],
        ("data.csv", "'region'"),
    ),
    Case(
        "prep-transform-not-module-function",
        lambda e: ["prep", "csv-to-parquet", _csv(e, GOOD_CSV), str(e.tmp / "o"), "--transform", "nocolon"],
        ("nocolon", "module:function"),
    ),
    Case(
        "prep-transform-module-missing",
        lambda e: [
            "prep",
            "csv-to-parquet",
            _csv(e, GOOD_CSV),
            str(e.tmp / "o"),
            "--transform",
            "no_mod_xyz:f",
        ],
        ("no_mod_xyz",),
    ),
    Case(
        "prep-empty-file",
        lambda e: ["prep", "csv-to-parquet", _csv(e, ""), str(e.tmp / "o")],
        ("data.csv", "Empty CSV"),
    ),
    Case(
        "prep-corrupt-gzip",
        lambda e: [
            "prep",
            "csv-to-parquet",
            _csv(e, b"\x1f\x8b\x08garbage", "data.csv.gz"),
            str(e.tmp / "o"),
        ],
        ("data.csv.gz",),
    ),
    Case(
        "prep-earlier-conversion-differs",
        lambda e: ["prep", "csv-to-parquet", _csv(e, GOOD_CSV), _converted(e)],
        ("pq", "earlier conversion", "--no-resume"),
    ),
    Case(
        "prep-no-resume-over-an-earlier-conversion-with-a-bad-file",
        lambda e: ["prep", "csv-to-parquet", _csv(e, b"a,b\n1,\xff\n"), _converted(e), "--no-resume"],
        ("data.csv", "line 2", "column 'b'"),
    ),
]

FIT = [
    Case(
        "fit-missing-file",
        lambda e: _fit(e, str(e.tmp / "missing.parquet")),
        ("missing.parquet", "no such file"),
    ),
    Case(
        "fit-empty-directory",
        lambda e: (e.tmp / "empty").mkdir() or _fit(e, str(e.tmp / "empty")),
        ("empty", "no data files"),
    ),
    Case(
        "fit-target-not-a-column",
        lambda e: ["fit", _training(e), "--target", "label", "--out", _earlier_run(e)],
        ("train.parquet", "'label'"),
    ),
    Case(
        "fit-target-null-in-every-row",
        lambda e: _fit(e, _training(e, y=pa.nulls(200, pa.int64()))),
        ("train.parquet", "'y'", "null in every row"),
    ),
    Case(
        "fit-corrupt-parquet",
        lambda e: _fit(e, _csv(e, b"PAR1 not really", "bad.parquet")),
        ("bad.parquet", "not a readable parquet"),
    ),
    Case(
        "fit-files-with-different-columns",
        lambda e: _fit(
            e, (_training(e, "d/a.parquet"), _training(e, "d/b.parquet", x1=None))[0].rsplit("/", 1)[0]
        ),
        ("b.parquet", "'x1'"),
    ),
    Case(
        "fit-files-with-different-types",
        lambda e: _fit(
            e,
            (
                _training(e, "d/a.parquet"),
                _training(e, "d/b.parquet", x0=pa.array([str(i) for i in range(200)])),
            )[0].rsplit("/", 1)[0],
        ),
        ("b.parquet", "'x0'"),
    ),
    Case(
        "fit-unsupported-column-type",
        lambda e: _fit(e, _training(e, x0=pa.array([[1, 2]] * 200))),
        ("train.parquet", "'x0'", "unsupported type"),
    ),
    Case(
        "fit-no-rows",
        lambda e: _fit(
            e, _parquet(e, pa.table({"x": pa.array([], pa.float64()), "y": pa.array([], pa.int64())}))
        ),
        ("data.parquet", "empty"),
    ),
    Case(
        "fit-only-the-target",
        lambda e: _fit(e, _parquet(e, pa.table({"y": [0, 1] * 50}))),
        ("data.parquet", "no feature columns"),
    ),
    Case(
        "fit-csv-with-a-ragged-first-block",
        lambda e: _fit(e, _csv(e, "x,y\n1,0\n2,1,3\n")),
        ("data.csv", "Expected 2 columns"),
    ),
    Case("fit-unknown-task", lambda e: _fit(e, _training(e), "--task", "ranking"), ("--task", "'ranking'")),
    Case(
        "fit-unknown-family", lambda e: _fit(e, _training(e), "--families", "forest"), ("families", "forest")
    ),
    Case("fit-one-cv-fold", lambda e: _fit(e, _training(e), "--cv-folds", "1"), ("cv_folds",)),
    Case(
        "fit-cv-without-refit",
        lambda e: _fit(e, _training(e), "--cv-folds", "3", "--no-refit"),
        ("cv_folds=3", "refit"),
    ),
    Case("fit-no-data-no-target", lambda e: ["fit", "--out", _earlier_run(e)], ("DATA", "--target")),
    Case(
        "fit-resume-without-an-earlier-fit",
        lambda e: ["fit", "--resume", "--out", str(e.tmp / "new-run")],
        ("new-run/fit.json", "no fit to resume"),
    ),
    Case(
        "fit-resume-from-a-damaged-record",
        lambda e: (
            Path(_earlier_run(e), "fit.json").write_text("{not json"),
            ["fit", "--resume", "--out", str(e.tmp / "run")],
        )[1],
        ("run/fit.json", "not a fit record"),
    ),
    Case(
        "fit-resume-when-the-data-is-gone",
        lambda e: ["fit", "--resume", "--out", _earlier_run(e)],
        ("old.parquet", "no such file"),
    ),
]

PREDICT = [
    Case(
        "predict-no-model-directory", lambda e: _predict(e, e.tmp / "nomodel"), ("nomodel", "no such model")
    ),
    Case(
        "predict-empty-model-directory",
        lambda e: (e.tmp / "m").mkdir() or _predict(e, e.tmp / "m"),
        ("m/metadata.json", "missing"),
    ),
    Case(
        "predict-lightgbm-model-file-deleted",
        lambda e: _damaged(e, "lightgbm", lambda d: (d / "model.txt").unlink()),
        ("model.txt", "missing"),
    ),
    Case(
        "predict-lightgbm-model-file-truncated",
        lambda e: _damaged(e, "lightgbm", lambda d: _truncate(d / "model.txt")),
        ("model.txt", "damaged"),
    ),
    Case(
        "predict-catboost-model-file-deleted",
        lambda e: _damaged(e, "catboost", lambda d: (d / "model.cbm").unlink()),
        ("model.cbm", "missing"),
    ),
    Case(
        "predict-catboost-model-file-truncated",
        lambda e: _damaged(e, "catboost", lambda d: _truncate(d / "model.cbm")),
        ("model.cbm", "damaged"),
    ),
    Case(
        "predict-xgboost-model-file-tampered",
        lambda e: _damaged(e, "xgboost", lambda d: _flip_byte(d / "model.ubj")),
        ("model.ubj", "SHA-256"),
    ),
    Case(
        "predict-preprocessor-changed",
        lambda e: _damaged(e, "xgboost", lambda d: _edit_json(d / "preprocessor.json", target="z")),
        ("preprocessor.json", "damaged"),
    ),
    Case(
        "predict-metadata-not-json",
        lambda e: _damaged(e, "xgboost", lambda d: (d / "metadata.json").write_text("{")),
        ("metadata.json", "unreadable"),
    ),
    Case(
        "predict-metadata-newer-format",
        lambda e: _damaged(e, "xgboost", lambda d: _edit_json(d / "metadata.json", format_version=99)),
        ("metadata.json", "format 99"),
    ),
    Case(
        "predict-metadata-unknown-family",
        lambda e: _damaged(e, "xgboost", lambda d: _edit_json(d / "metadata.json", family="forest")),
        ("metadata.json", "forest"),
    ),
    Case(
        "predict-ensemble-file-deleted",
        lambda e: ((e.ensemble_dir / "ensemble.json").unlink(), _predict(e, e.ensemble_dir))[1],
        ("ensemble/ensemble.json", "missing"),
    ),
    Case(
        "predict-ensemble-file-damaged",
        lambda e: ((e.ensemble_dir / "ensemble.json").write_text("[1,"), _predict(e, e.ensemble_dir))[1],
        ("ensemble.json", "unreadable"),
    ),
    Case(
        "predict-ensemble-member-deleted",
        lambda e: (
            __import__("shutil").rmtree(e.ensemble_dir / "members" / "lightgbm"),
            _predict(e, e.ensemble_dir),
        )[1],
        ("members/lightgbm/metadata.json", "missing"),
    ),
    Case(
        "predict-ensemble-member-truncated",
        lambda e: (
            _truncate(e.ensemble_dir / "members" / "lightgbm" / "model.txt"),
            _predict(e, e.ensemble_dir),
        )[1],
        ("members/lightgbm/model.txt", "damaged"),
    ),
    Case(
        "predict-data-missing",
        lambda e: _predict(e, e.model_dir("xgboost"), str(e.tmp / "gone.parquet")),
        ("gone.parquet", "no such file"),
    ),
    Case(
        "predict-data-lacks-a-feature",
        lambda e: _predict(e, e.model_dir("xgboost"), _features(e, x2=None)),
        ("new.parquet", "'x2'"),
    ),
    Case(
        "predict-data-corrupt",
        lambda e: _predict(e, e.model_dir("xgboost"), _csv(e, b"PAR1 x", "new.parquet")),
        ("new.parquet",),
    ),
    Case(
        "predict-data-text-in-a-numeric-feature",
        lambda e: _predict(e, e.model_dir("xgboost"), _features(e, x1=pa.array(["abc"] * 50))),
        ("new.parquet", "'x1'"),
    ),
    Case(
        "predict-data-without-rows",
        lambda e: _predict(
            e,
            e.model_dir("xgboost"),
            _parquet(e, pa.table({c: pa.array([], pa.float64()) for c in ("x0", "x1", "x2")}), "new.parquet"),
        ),
        ("new.parquet", "no rows"),
    ),
]

TRAIN = [
    Case(
        "train-missing-file",
        lambda e: ["train", str(e.tmp / "none.parquet"), "--target", "y", "--out", str(e.tmp / "m")],
        ("none.parquet", "no such file"),
    ),
    Case(
        "train-target-not-a-column",
        lambda e: ["train", _training(e), "--target", "label", "--out", str(e.tmp / "m")],
        ("train.parquet", "'label'"),
    ),
    Case(
        "train-unknown-family",
        lambda e: ["train", _training(e), "--target", "y", "--family", "forest", "--out", str(e.tmp / "m")],
        ("family", "forest"),
    ),
    Case(
        "train-params-not-key-value",
        lambda e: ["train", _training(e), "--target", "y", "--params", "depth", "--out", str(e.tmp / "m")],
        ("--params", "'depth'"),
    ),
]

CONFIG = [
    Case(
        "config-file-missing",
        lambda e: ["train", _training(e), "--target", "y", "--config", str(e.tmp / "none.yaml")],
        ("none.yaml", "not found"),
    ),
    Case("config-not-yaml", lambda e: _config(e, "train: [unclosed\n"), ("automl.yaml", "not valid YAML")),
    Case("config-top-level-list", lambda e: _config(e, "- train\n"), ("automl.yaml", "mapping")),
    Case(
        "config-unknown-section",
        lambda e: _config(e, "trian:\n  family: xgboost\n"),
        ("automl.yaml", "trian"),
    ),
    Case(
        "config-unknown-key",
        lambda e: _config(e, "train:\n  num_workerz: 2\n"),
        ("automl.yaml", "train.num_workerz", "unknown key"),
    ),
    Case(
        "config-wrong-type",
        lambda e: _config(e, "train:\n  num_workers: two\n"),
        ("automl.yaml", "train.num_workers"),
    ),
    Case(
        "config-out-of-range",
        lambda e: _config(e, "data:\n  valid_fraction: 1.5\n"),
        ("automl.yaml", "data.valid_fraction"),
    ),
    Case(
        "config-unknown-family",
        lambda e: _config(e, "train:\n  family: forest\n"),
        ("automl.yaml", "train.family"),
    ),
    Case(
        "quickstart-config-unknown-key",
        lambda e: [
            "quickstart",
            "--out",
            str(e.tmp / "qs"),
            "--config",
            (e.tmp / "q.yaml", (e.tmp / "q.yaml").write_text("search:\n  budget: 3\n"))[0],
        ],
        ("q.yaml", "search.budget"),
    ),
]

CASES = PREP + FIT + PREDICT + TRAIN + CONFIG


def test_the_suite_covers_at_least_forty_cases():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_naming_it_and_changes_nothing(case, tmp_path, model_dir, request):
    ensemble = request.getfixturevalue("ensemble_dir") if "ensemble" in case.id else None
    env = Env(tmp=tmp_path, model_dir=model_dir, ensemble_dir=ensemble)
    args = case.setup(env)
    before = snapshot(tmp_path)

    result = automl(*args)

    lines = result.stderr.strip().splitlines()
    assert result.exit_code == case.code, (result.stdout, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for name in case.names:
        assert name.format(tmp=tmp_path) in lines[0], lines[0]
    assert snapshot(tmp_path) == before


def test_a_gzip_input_that_is_valid_still_converts(tmp_path):
    """The corrupt-gzip case above is about the bytes, not the suffix."""
    src = tmp_path / "ok.csv.gz"
    src.write_bytes(gzip.compress(GOOD_CSV.encode()))
    assert automl("prep", "csv-to-parquet", str(src), str(tmp_path / "o")).exit_code == 0
