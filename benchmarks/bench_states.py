"""How fast does SQLiteStore read a day and a week of performance states, window by window and from rollups?

    .venv/bin/python -m benchmarks.bench_states [--days 7] [--pairs 50] [--repeat 5]

Writes `--days` of 60-s binary-classification states (`--pairs` labeled pairs with scores per window, one
write_states call per window, as the flusher does), then times, over the last 24 h and the last `--days` (ranges
no rollup bucket is aligned with), what GET .../performance does to get the merged state: before rollups every
raw window (`read_states`), now `read_state_pieces`; both decoded and merged. Prints plain numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from collector.performance import merge_states, state_from_bytes, zero_state
from collector.state_kinds import PERFORMANCE
from collector.store import StateRecord
from collector.store_sqlite import SQLiteStore


def main() -> None:
    parser = argparse.ArgumentParser(description="SQLiteStore state read timings, raw windows vs rollups")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--pairs", type=int, default=50, help="labeled pairs per 60-s window")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    width, n_windows = 60, args.days * 1440
    t0 = 1_767_225_600 + 14 * 3600 + 23 * 60  # 2026-01-01 14:23 UTC
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(os.path.join(tmp, "bench.db"))
        write_s: list[float] = []
        for i in range(n_windows):
            actuals = rng.integers(0, 2, size=args.pairs)
            scores = np.clip(actuals * 0.3 + rng.uniform(size=args.pairs) * 0.7, 0, 1)
            state = zero_state("binary_classification")
            state.update(actuals.tolist(), labels=(scores >= 0.5).astype(int).tolist(), scores=scores.tolist())
            began = time.perf_counter()
            store.write_states([StateRecord(PERFORMANCE, "bench", "1", t0 + i * width, width, state.to_bytes(), "c")])
            write_s.append(time.perf_counter() - began)
        end = t0 + n_windows * width
        print(f"write_states, 1 window: {statistics.median(write_s) * 1e3:.2f} ms median (raw row + 4 rollups)")
        for label, span in (("day", 86_400), (f"{args.days} days", args.days * 86_400)):
            for how, read in (("raw windows", store.read_states), ("rollups", store.read_state_pieces)):
                seconds, pieces, count = timed(partial(read, PERFORMANCE, "bench", "1", end - span, end), args)
                print(f"{label:>8}, {how:<11}: {pieces:5d} blobs, {seconds * 1e3:8.1f} ms median (count {count})")
        store.close()


def timed(read: Callable[[], list[tuple[int, bytes]]], args: argparse.Namespace) -> tuple[float, int, int]:
    """Median seconds to read, decode and merge; the number of blobs and the merged count (equal either way)."""
    times, pieces, count = [], 0, 0
    for _ in range(args.repeat):
        began = time.perf_counter()
        rows = read()
        total = merge_states(state_from_bytes(blob) for _, blob in rows)
        times.append(time.perf_counter() - began)
        pieces, count = len(rows), 0 if total is None else total.count
    return statistics.median(times), pieces, count


if __name__ == "__main__":
    main()
