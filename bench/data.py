"""Data-stage benchmark: Ray Data read throughput into numpy batches against raw pyarrow, and
csv-to-parquet peak memory at two CSV sizes.

    python bench/data.py [--rows 2000000 8000000] [--cols 30] [--rows-per-file 125000]
                         [--prep-sizes 0.3 1.5]

Three readers over the same Parquet files, each timed in this process after a warm-up:
``raw`` is ``pyarrow.parquet.read_table`` then ``to_numpy`` per column (the baseline); ``plain`` is the
default Ray Data use (``read_parquet(dir).iter_batches(batch_size=100_000, batch_format="numpy")``);
``project`` is ``app.data.load`` + ``app.data.iter_numpy`` over a dataset ``inspect`` validated once (as
``prepare`` does; the validation time is reported on its own as ``inspect_s``).
Each size is its own set of files; the small one shows Ray Data's fixed cost per execution, the
large one its throughput. The last line's ``ratio`` is project rows/s ÷ raw rows/s at the largest
size; every size's figures are in ``sizes``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import emit, report, timed  # noqa: E402


def make_files(out: Path, *, rows: int, cols: int, files: int) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    per = rows // files
    paths = []
    for i in range(files):
        table = pa.table({f"f{j}": rng.random(per, dtype=np.float32) for j in range(cols - 1)})
        table = table.append_column("y", pa.array(rng.integers(0, 2, per)))
        path = out / f"part-{i:03d}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    return paths


def measure(work: Path, *, rows: int, cols: int, rows_per_file: int, repeat: int) -> dict:
    """Raw, plain Ray Data and project readers over one set of files (Ray already initialised)."""
    import ray

    from app.data import DatasetSpec, inspect, iter_numpy, load

    files_n = max(1, rows // rows_per_file)
    directory = work / f"parquet-{rows}"
    files = make_files(directory, rows=rows, cols=cols, files=files_n)
    expected = rows - rows % files_n
    mem_bytes = expected * (cols - 1) * 4 + expected * 8

    def raw() -> int:
        table = pq.read_table(files)
        arrays = {name: table.column(name).to_numpy() for name in table.column_names}
        return len(arrays["y"])

    def plain() -> int:
        ds = ray.data.read_parquet(str(directory))
        return sum(len(b["y"]) for b in ds.iter_batches(batch_size=100_000, batch_format="numpy"))

    # Validation (every footer, on the driver) runs once per dataset, as ``prepare`` does; it is
    # timed on its own and the read is ``load`` + ``iter_numpy`` over the validated dataset.
    inspect_s, info = timed(lambda: inspect(DatasetSpec(uri=str(directory), target="y")), repeat=repeat)

    def project() -> int:
        return sum(len(b["y"]) for b in iter_numpy(load(info)))

    out: dict = {
        "rows": expected,
        "files": files_n,
        "parquet_mb": round(sum(os.path.getsize(f) for f in files) / 1e6, 1),
    }
    for name, fn in (("raw_pyarrow", raw), ("plain_ray_data", plain), ("project", project)):
        seconds, got = timed(fn, repeat=repeat)
        assert got == expected, (name, got)
        out[name] = {
            "seconds": round(seconds, 3),
            "rows_per_s": round(got / seconds),
            "mb_per_s": round(mem_bytes / seconds / 1e6, 1),
        }
        report(
            f"{name} rows={expected:,}",
            seconds=seconds,
            rows_per_s=got / seconds,
            mb_per_s=mem_bytes / seconds / 1e6,
        )
    raw_rate = out["raw_pyarrow"]["rows_per_s"]
    out["ratio"] = round(out["project"]["rows_per_s"] / raw_rate, 4)
    out["plain_ratio"] = round(out["plain_ray_data"]["rows_per_s"] / raw_rate, 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 8_000_000])
    parser.add_argument("--cols", type=int, default=30)
    parser.add_argument("--rows-per-file", type=int, default=125_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--prep-sizes",
        type=float,
        nargs="*",
        default=[0.3, 1.5],
        help="CSV sizes in GB for the csv-to-parquet memory figures (none to skip).",
    )
    args = parser.parse_args()

    import ray
    from ray.data import DataContext

    work = Path(tempfile.mkdtemp(prefix="bench-data-"))
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    DataContext.get_current().enable_progress_bars = False
    sizes = [
        measure(work, rows=rows, cols=args.cols, rows_per_file=args.rows_per_file, repeat=args.repeat)
        for rows in sorted(args.rows)
    ]
    ray.shutdown()

    prep = {}
    if args.prep_sizes:
        from prep_memory import prep_memory_figures

        prep = prep_memory_figures(str(work / "prep"), sizes_gb=tuple(args.prep_sizes))
        report("csv_to_parquet", **{k: v for k, v in prep.items() if not isinstance(v, list)})

    largest = sizes[-1]
    emit(
        "data",
        ratio=largest["ratio"],
        rows=largest["rows"],
        cols=args.cols,
        raw_rows_per_s=largest["raw_pyarrow"]["rows_per_s"],
        plain_rows_per_s=largest["plain_ray_data"]["rows_per_s"],
        project_rows_per_s=largest["project"]["rows_per_s"],
        project_mb_per_s=largest["project"]["mb_per_s"],
        plain_ratio=largest["plain_ratio"],
        sizes=sizes,
        prep=prep,
    )


if __name__ == "__main__":
    main()
