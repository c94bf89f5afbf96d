"""How fast does the label join match actuals against a store holding 1M pending predictions, and how big is it?

    .venv/bin/python -m benchmarks.label_join [--pending 1000000] [--labels 200000] [--batch 1000] [--ids both]

Fills a fresh SQLite file with `--pending` binary-classification predictions through LabelJoin (the SDK's
32-hex-digit ids, a label and a score each, 1,000 per inference batch, spread over a day of 60-s windows),
then joins `--labels` actuals for randomly chosen held ids, `--batch` per call, shuffled, as POST
/api/v1/actuals and the OTLP handler do (one transaction per batch, the performance states of the windows
folded into the collector's in-memory state windows). Reported: labels joined per second (the target is
>= 50,000 on SQLite), predictions held per second, bytes on disk per held prediction (file size after a WAL
checkpoint, tables and indexes), and a performance read over the day.

Two kinds of ids: `ordered`, the SDK's (a millisecond time stamp, then 80 random bits, as UUIDv7 does) with
labels arriving in the order of their predictions; and `random`, 128 random bits, as an application's own
ids (`id_column=`) may be, labels for random predictions of the day.
Ids are the B-tree keys, so random ids make every insert and every label dirty about one page of
a table far larger than a batch; ordered ones share pages. On a 2-vCPU VM where a 4 KB pwrite() costs 4 us the
commit of those pages is most of a label's cost.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

import numpy as np

from collector.labels import LabelJoin
from collector.records import ActualsBatch, InferenceBatch
from collector.state_kinds import PERFORMANCE
from collector.state_windows import StateWindows
from collector.store_sqlite import SQLiteStore

MODEL, VERSION, WIDTH = "bench", "1", 60
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def _file_bytes(store: SQLiteStore) -> int:
    """The file's size once the WAL is checkpointed into it."""
    with store.transaction() as db:
        db.execute("SELECT 1")
    store._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(os.path.getsize(store.path + suffix) for suffix in ("", "-wal") if os.path.exists(store.path + suffix))


def run(
    pending: int = 1_000_000, labels: int = 200_000, batch: int = 1000, ordered: bool = False, seed: int = 7
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    if ordered:  # a time prefix (as UUIDv7 has), and labels that come in the order of their predictions
        ids = [f"{i:012x}{rng.bytes(10).hex()}" for i in range(pending)]
    else:  # the SDK's ids: 128 random bits; labels for random predictions of the day
        ids = [rng.bytes(16).hex() for _ in range(pending)]
    scores = rng.uniform(size=pending)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(os.path.join(tmp, "labels.db"))
        states = StateWindows(store, WIDTH, grace_s=0, clock=lambda: T0 + 86_400)
        join = LabelJoin(
            store.labels(),
            lambda m, v, w, s: states.add(PERFORMANCE, m, v, w, s),
            ttl_s=7 * 86_400,
            window_start=lambda t: int(t // WIDTH) * WIDTH,
            clock=lambda: T0 + 86_400,
            max_buffer_rows=10**9,
        )
        empty = _file_bytes(store)
        began = time.perf_counter()
        for start in range(0, pending, 1000):
            chunk = slice(start, start + 1000)
            s = scores[chunk]
            join.add_predictions(
                [
                    InferenceBatch(
                        MODEL,
                        VERSION,
                        T0 + start * 86_400 / pending,
                        ids[chunk],
                        {},
                        {"score": s.tolist(), "label": (s >= 0.5).astype(np.int64).tolist()},
                        task="binary_classification",
                    )
                ]
            )
            if (start // 1000) % 50 == 49:
                join.write_predictions()
        join.write_predictions()
        fill_s = time.perf_counter() - began
        held = store.labels().held()[0]
        size = _file_bytes(store) - empty

        chosen = rng.choice(pending, size=min(labels, pending), replace=False)
        if ordered:
            chosen.sort()
        truth = (rng.uniform(size=chosen.size) < scores[chosen]).astype(np.int64).tolist()
        batches = [
            ActualsBatch(MODEL, None, T0, [ids[i] for i in chosen[k : k + batch]], truth[k : k + batch])
            for k in range(0, chosen.size, batch)
        ]
        matched = 0
        began = time.perf_counter()
        for b in batches:
            matched += join.add_actuals(b).matched
        join.emit_states()
        join_s = time.perf_counter() - began
        assert matched == chosen.size, (matched, chosen.size)

        flush_began = time.perf_counter()
        written = states.flush(final=True)
        flush_s = time.perf_counter() - flush_began
        read_began = time.perf_counter()
        day = states.read(PERFORMANCE, MODEL, VERSION, T0, T0 + 86_400)
        read_s = time.perf_counter() - read_began
        assert sum(state.count for _, state in day) == chosen.size
        store.close()
    return {
        "pending": float(held),
        "labels": float(chosen.size),
        "batch": float(batch),
        "ordered": float(ordered),
        "labels_per_s": chosen.size / join_s,
        "predictions_per_s": pending / fill_s,
        "bytes_per_prediction": size / held,
        "windows": float(written),
        "flush_s": flush_s,
        "read_day_s": read_s,
    }


def report(results: dict[str, Any]) -> str:
    r = results
    return "\n".join(
        [
            f"Label join on SQLite: {int(r['labels']):,} actuals in batches of {int(r['batch']):,} against"
            f" {int(r['pending']):,} held predictions"
            + (" (time-ordered ids, labels in prediction order)" if r.get("ordered") else " (random 128-bit ids)"),
            f"  labels joined per second            {r['labels_per_s']:10,.0f}        target >= 50,000",
            f"  predictions held per second         {r['predictions_per_s']:10,.0f}        (filling the store)",
            f"  bytes on disk per held prediction   {r['bytes_per_prediction']:10.0f}        tables + indexes",
            f"  performance states: {int(r['windows'])} windows written in {r['flush_s'] * 1e3:.0f} ms,"
            f" a day read back in {r['read_day_s'] * 1e3:.0f} ms",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0] if __doc__ else None)
    parser.add_argument("--pending", type=int, default=1_000_000, help="predictions held before the labels come")
    parser.add_argument("--labels", type=int, default=200_000, help="actuals joined (timed)")
    parser.add_argument("--batch", type=int, default=1000, help="actuals per call")
    parser.add_argument(
        "--ids", choices=["random", "ordered", "both"], default="both", help="ordered: the SDK's ids (default: both)"
    )
    args = parser.parse_args()
    for ordered in {"random": [False], "ordered": [True], "both": [False, True]}[args.ids]:
        print(report(run(args.pending, args.labels, args.batch, ordered)), flush=True)


if __name__ == "__main__":
    main()
