"""How fast does SQLiteStore answer a day-long drift read, and how big are the windows it keeps?

    .venv/bin/python -m benchmarks.bench_store [--rows 512] [--columns 20] [--hours 24]

Writes a day of 60-s windows (each `--rows` rows x `--columns` numeric columns, one write_windows call per
window, as the flusher does), then times read_profile over the last 24 h (a range no rollup bucket is
aligned with) and the deciles of every merged column. Prints plain numbers; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from collector.sketches import Profile
from collector.store import WindowRecord
from collector.store_sqlite import SQLiteStore


def main() -> None:
    parser = argparse.ArgumentParser(description="SQLiteStore read/write timings and sizes")
    parser.add_argument("--rows", type=int, default=512, help="rows per 60-s window")
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    width, n_windows, cells = 60, args.hours * 60, args.hours * 60 * args.columns
    t0 = 1_767_225_600 + 14 * 3600 + 23 * 60  # 2026-01-01 14:23 UTC
    lists = [rng.normal(j, 1 + j, size=args.rows).tolist() for j in range(args.columns)]  # as OTLP decodes them

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        store = SQLiteStore(path)
        sketch_s = encode_s = 0.0
        write_s: list[float] = []
        blob_bytes = 0
        for i in range(n_windows):
            shift = float(i % 17)
            data = {("input", f"f{j}"): [v + shift for v in col] for j, col in enumerate(lists)}
            began = time.perf_counter()
            profile = Profile.zero()
            profile.update_columns(args.rows, data)
            sketch_s += time.perf_counter() - began
            began = time.perf_counter()
            record = WindowRecord.from_profile("bench", "1", t0 + i * width, width, profile, "c1")
            encode_s += time.perf_counter() - began
            blob_bytes += len(record.profile)
            began = time.perf_counter()
            store.write_windows([record])
            write_s.append(time.perf_counter() - began)

        end = t0 + n_windows * width
        reads, queries = [], []
        for _ in range(args.repeat):
            began = time.perf_counter()
            merged = store.read_profile("bench", "1", end - args.hours * 3600, end)
            reads.append(time.perf_counter() - began)
            began = time.perf_counter()
            for col in merged.columns.values():
                col.kll.get_quantiles([i / 10 for i in range(1, 10)])
            queries.append(time.perf_counter() - began)
        assert merged.rows == n_windows * args.rows, merged.rows
        store.close()
        db_bytes = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))

    per_value_ns = sketch_s / cells / args.rows * 1e9
    rows = [
        ("column sketches", f"{n_windows} windows x {args.columns} numeric columns x {args.rows} rows = {cells}"),
        ("sketch a window (lists)", f"{sketch_s / n_windows * 1e3:.2f} ms = {per_value_ns:.0f} ns/value"),
        ("encode a window", f"{encode_s / n_windows * 1e3:.2f} ms"),
        ("write_windows, 1 window", f"{statistics.median(write_s) * 1e3:.2f} ms median (raw row + 4 rollups)"),
        (
            f"read_profile, {args.hours} h",
            f"{statistics.median(reads) * 1e3:.2f} ms median, {min(reads) * 1e3:.2f} best",
        ),
        ("deciles of all columns", f"{statistics.median(queries) * 1e3:.2f} ms median"),
        ("window blob per column", f"{blob_bytes / cells:.0f} bytes"),
        ("database per window/column", f"{db_bytes / cells:.0f} bytes with rollups ({db_bytes / 1e6:.0f} MB)"),
    ]
    for name, value in rows:
        print(f"{name:28s} {value}")


if __name__ == "__main__":
    main()
