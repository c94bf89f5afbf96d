"""A nightly batch-scoring job: score a DataFrame in batches, record each batch with `ModelMonitor.log`, and log
the true labels once they are known.

    .venv/bin/python -m examples.batch_job [--collector http://127.0.0.1:4318] [--batch 50]
"""

from __future__ import annotations

import argparse
import time

import instrument
from examples.cancer import MODEL, TASK, VERSION, train


def run(collector: str | None, batch: int = 50) -> tuple[int, int]:
    """Score the held-out split; returns (rows scored, labels sent)."""
    instrument.configure(service_name="cancer-batch", endpoint=collector)
    cancer = train()
    monitor = instrument.ModelMonitor(MODEL, VERSION, task=TASK)
    frame, truth = cancer.X_live, cancer.y_live
    ids: list[str] = []
    for start in range(0, len(frame), batch):
        chunk = frame.iloc[start : start + batch]
        t0 = time.perf_counter()
        scores = cancer.clf.predict_proba(chunk)[:, 1]
        ids += monitor.log(chunk, scores, latency_s=time.perf_counter() - t0)
    sent = instrument.log_actuals(model=MODEL, ids=ids, actuals=truth.astype(int).tolist(), version=VERSION)
    instrument.flush()
    return len(ids), sent


def main() -> None:
    parser = argparse.ArgumentParser(description="Score the cancer hold-out set in batches, monitored.")
    parser.add_argument("--collector", help="collector base URL (default PREDWATCH_ENDPOINT, else :4318)")
    parser.add_argument("--batch", type=int, default=50, help="rows per batch")
    args = parser.parse_args()
    rows, labels = run(args.collector, args.batch)
    print(f"scored {rows} rows in batches of {args.batch}; sent {labels} labels")


if __name__ == "__main__":
    main()
