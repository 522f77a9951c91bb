"""Peak memory of ``csv_to_parquet`` against CSV size: streaming keeps it flat as the file grows.

Run: ``python bench/prep_memory.py [--sizes 0.3 1.5] [--work-dir DIR]``; ratio = small RSS / large RSS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from _harness import emit, report

REPO = Path(__file__).resolve().parents[1]
_GEN_ROWS = 500_000  # rows generated and written at a time: generation is constant-memory too

# Runs in a fresh interpreter, so that its peak RSS is the conversion's alone (plus the imports).
_CHILD = """
import json, re, sys, time
from app.data.prep import csv_to_parquet

def hwm_kb():  # VmHWM: this process's peak RSS (ru_maxrss would also count the parent's, from before exec)
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1])

imported = hwm_kb()
start = time.perf_counter()
result = csv_to_parquet(sys.argv[1], sys.argv[2], resume=False)
seconds = time.perf_counter() - start
print(json.dumps({"rows": result.rows, "seconds": seconds, "peak_kb": hwm_kb(), "import_kb": imported}))
"""


def write_csv(path: Path, size_bytes: int, *, seed: int = 0) -> int:
    """Write a CSV of about ``size_bytes`` (ints, floats with gaps, a text column); returns its rows."""
    rng = np.random.default_rng(seed)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("x", pa.float64()),
            ("y", pa.float64()),
            ("k", pa.int64()),
            ("name", pa.string()),
        ]
    )
    rows = 0
    with pa.OSFile(str(path), "wb") as sink, pcsv.CSVWriter(sink, schema) as writer:
        while sink.tell() < size_bytes:
            ids = np.arange(rows, rows + _GEN_ROWS)
            k = rng.integers(0, 1000, _GEN_ROWS)
            y = rng.normal(size=_GEN_ROWS).round(3)
            name = pc.binary_join_element_wise(
                "user_", pc.cast(pa.array(k * 7919 % 100_003), pa.string()), ""
            )
            columns = [
                pa.array(ids),
                pa.array(rng.random(_GEN_ROWS)),
                pa.array(y, mask=k % 10 == 0),
                pa.array(k),
                name,
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            rows += _GEN_ROWS
    return rows


def _convert_in_child(csv: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(csv), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"conversion of {csv} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prep_memory_figures(work_dir: str, sizes_gb: tuple[float, ...] = (0.3, 1.5)) -> dict:
    """Generate CSVs of ``sizes_gb`` in ``work_dir``, convert each in a fresh process, measure its peak RSS.

    The generated CSVs and Parquet outputs are deleted afterwards.

    Returns:
        ``csv_gb``, ``peak_rss_mb``, ``import_rss_mb`` (the child's RSS before converting), ``rows_per_s``
        per size, and ``rss_ratio_large_to_small`` (last size's peak over the first's).
    """
    root = Path(work_dir)
    root.mkdir(parents=True, exist_ok=True)
    figures: dict[str, list] = {"csv_gb": [], "peak_rss_mb": [], "import_rss_mb": [], "rows_per_s": []}
    for i, size in enumerate(sizes_gb):
        csv, out = root / f"prep_memory_{i}.csv", root / f"prep_memory_{i}_parquet"
        try:
            write_csv(csv, int(size * 1e9), seed=i)
            child = _convert_in_child(csv, out)
            figures["csv_gb"].append(round(csv.stat().st_size / 1e9, 3))
        finally:
            csv.unlink(missing_ok=True)
            shutil.rmtree(out, ignore_errors=True)
        figures["peak_rss_mb"].append(round(child["peak_kb"] / 1024, 1))
        figures["import_rss_mb"].append(round(child["import_kb"] / 1024, 1))
        figures["rows_per_s"].append(round(child["rows"] / child["seconds"]))
    figures["rss_ratio_large_to_small"] = round(figures["peak_rss_mb"][-1] / figures["peak_rss_mb"][0], 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.3, 1.5], help="CSV sizes in GB")
    parser.add_argument("--work-dir", default=None, help="where to write the CSVs (default: a temp dir)")
    args = parser.parse_args()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="prep_memory_")
    try:
        figures = prep_memory_figures(work_dir, tuple(args.sizes))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    for gb, rss, base, speed in zip(
        figures["csv_gb"],
        figures["peak_rss_mb"],
        figures["import_rss_mb"],
        figures["rows_per_s"],
        strict=True,
    ):
        report(f"csv_to_parquet {gb:.2f} GB", peak_rss_mb=rss, import_rss_mb=base, rows_per_s=speed)
    small, large = figures["peak_rss_mb"][0], figures["peak_rss_mb"][-1]
    emit("prep_memory", ratio=small / large, **figures)


if __name__ == "__main__":
    main()
