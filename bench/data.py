"""Data-stage benchmark: Ray Data read throughput into numpy batches against raw pyarrow, and
csv-to-parquet peak memory at two CSV sizes.

    python bench/data.py [--rows 2000000] [--cols 30] [--files 16] [--prep-sizes 0.3 1.5]

Three readers over the same Parquet files, each timed in this process after a warm-up:
``raw`` is ``pyarrow.parquet.read_table`` then ``to_numpy`` per column (the baseline); ``plain`` is the
default Ray Data use (``read_parquet(dir).iter_batches(batch_size=100_000, batch_format="numpy")``);
``project`` is ``app.data.load`` + ``app.data.iter_numpy`` as the training stage uses it.
The last line's ``ratio`` is project rows/s ÷ raw rows/s.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--cols", type=int, default=30)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--prep-sizes",
        type=float,
        nargs="*",
        default=[0.3, 1.5],
        help="CSV sizes in GB for the csv-to-parquet memory figures (none to skip).",
    )
    args = parser.parse_args()

    import ray

    from app.data import DatasetSpec, iter_numpy, load

    work = Path(tempfile.mkdtemp(prefix="bench-data-"))
    files = make_files(work / "parquet", rows=args.rows, cols=args.cols, files=args.files)
    nbytes = sum(os.path.getsize(f) for f in files)
    mem_bytes = args.rows * (args.cols - 1) * 4 + args.rows * 8

    def raw() -> int:
        table = pq.read_table(files)
        arrays = {name: table.column(name).to_numpy() for name in table.column_names}
        return len(arrays["y"])

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False

    def plain() -> int:
        ds = ray.data.read_parquet(str(work / "parquet"))
        return sum(len(b["y"]) for b in ds.iter_batches(batch_size=100_000, batch_format="numpy"))

    spec = DatasetSpec(uri=str(work / "parquet"), target="y")

    def project() -> int:
        return sum(len(b["y"]) for b in iter_numpy(load(spec)))

    results = {}
    for name, fn in (("raw_pyarrow", raw), ("plain_ray_data", plain), ("project", project)):
        seconds, rows = timed(fn, repeat=args.repeat)
        assert rows == args.rows - args.rows % args.files, (name, rows)
        results[name] = {
            "seconds": seconds,
            "rows_per_s": rows / seconds,
            "mb_per_s": mem_bytes / seconds / 1e6,
        }
        report(name, seconds=seconds, rows_per_s=rows / seconds, mb_per_s=mem_bytes / seconds / 1e6)
    ray.shutdown()

    prep = {}
    if args.prep_sizes:
        from prep_memory import prep_memory_figures

        prep = prep_memory_figures(str(work / "prep"), sizes_gb=tuple(args.prep_sizes))
        report("csv_to_parquet", **{k: v for k, v in prep.items() if not isinstance(v, list)})

    raw_rate = results["raw_pyarrow"]["rows_per_s"]
    emit(
        "data",
        ratio=results["project"]["rows_per_s"] / raw_rate,
        rows=args.rows,
        cols=args.cols,
        files=args.files,
        parquet_mb=round(nbytes / 1e6, 1),
        raw_rows_per_s=round(raw_rate),
        plain_rows_per_s=round(results["plain_ray_data"]["rows_per_s"]),
        project_rows_per_s=round(results["project"]["rows_per_s"]),
        project_mb_per_s=round(results["project"]["mb_per_s"], 1),
        plain_ratio=round(results["plain_ray_data"]["rows_per_s"] / raw_rate, 4),
        prep=prep,
    )


if __name__ == "__main__":
    main()
