"""Sampled calls converted as batches give exactly the rows they give converted one by one."""

from __future__ import annotations

import random
from time import perf_counter_ns
from typing import Any

import pytest

import instrument
from instrument import _runtime
from instrument._capture import CaptureJob, _row_batch_key, coalesce, prepare_jobs

from .conftest import Telemetry


def random_call(rng: random.Random) -> tuple[Any, Any]:
    """Inputs and outputs in the shapes an HTTP request or a batch job hands over, some of them odd."""
    n = rng.choice([1, 1, 1, 2, 5])
    shape = rng.randrange(8)
    if shape == 0:
        width = rng.choice([3, 3, 4])
        x: Any = [[rng.random() for _ in range(width)] for _ in range(n)]
    elif shape == 1:
        x = [{"a": rng.random(), "b": rng.choice(["u", "v", None])} for _ in range(n)]
    elif shape == 2:
        x = [{"b": rng.randrange(5), "a": rng.random()} for _ in range(n)]  # same keys, other order
    elif shape == 3:
        x = [[rng.random(), rng.randrange(9), "s"][: rng.choice([2, 3])] for _ in range(n)]  # ragged sometimes
    elif shape == 4:
        x = {"a": [rng.random() for _ in range(n)]}  # columns: not a batchable shape
    elif shape in (5, 6):  # one row as a dict of plain values, the keys of shapes 1 and 2 (they group together)
        n = 1
        x = {"a": rng.random(), "b": rng.choice(["u", "v", None, 3])}
        if shape == 6:
            x = {"b": rng.choice([rng.randrange(5), 2**70]), "a": rng.choice([rng.random(), True, None])}
    else:
        x = [[float("nan"), rng.randrange(-(2**70), 2**70), True] for _ in range(n)]
    kind = rng.randrange(5)
    if kind == 0:
        y: Any = [rng.random() for _ in range(n)]
    elif kind == 1:
        y = [rng.randrange(2) for _ in range(n)]
    elif kind == 2:
        y = [rng.choice(["yes", "no"]) for _ in range(n)]
    elif kind == 3:
        y = [rng.choice([0.5, 1]) for _ in range(n)]  # mixed types: converted one by one
    else:
        y = [2**64 for _ in range(n)]  # too large for int64: numpy reads it as an object
    if rng.random() < 0.05:
        y = y[:-1] or [0.5, 0.5]  # a row mismatch, counted and dropped
    elif n == 1 and rng.random() < 0.5:
        y = y[0]  # one row's output as a plain value (2**64 too: numpy would read it as an object)
    return x, y


def rows_by_id(payloads: list[Any]) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    for payload in payloads:
        columns = payload.columns
        for k, pid in enumerate(payload.ids):
            row = tuple(
                (table, name, type(values[k]).__name__, repr(values[k]))
                for table in ("inputs", "outputs")
                for name, values in sorted(columns[table].items())
            )
            found[pid] = (row, payload.attributes.get("predwatch.payload.sample_rate"))
    return found


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("sample_rate", [1.0, 0.5])
def test_batches_convert_as_calls_do(seed: int, sample_rate: float) -> None:
    _runtime.reset_for_tests()
    telemetry = Telemetry()
    telemetry.configure(sample_rate=sample_rate, rate_limit="off")  # 200 calls at once: all within no limit
    runtime = _runtime.current()
    assert runtime is not None
    jobs: list[CaptureJob] = []
    runtime.worker.put_payload = lambda job, nbytes: jobs.append(job) or True  # type: ignore[method-assign]
    rng = random.Random(seed)
    monitors = [
        instrument.ModelMonitor("a", "1", task="binary_classification"),
        instrument.ModelMonitor("b", "1", task="regression", features=["x", "y", "z"]),
        instrument.ModelMonitor("c", "1"),
    ]
    for _ in range(200):
        x, y = random_call(rng)
        rng.choice(monitors).finish(runtime, x, y, None, perf_counter_ns(), 1000, None, None)
    # Ids are random, so which calls are sampled varies from run to run: bounds, not counts.
    assert len(jobs) > (60 if sample_rate < 1 else 150)
    assert sum(_row_batch_key(job) is not None for job in jobs) > len(jobs) / 4  # calls of a batchable shape
    max_bytes = runtime.settings.max_event_bytes
    one_by_one = coalesce([c for c in (job.prepare(runtime) for job in jobs) if c is not None], max_bytes)
    for monitor in monitors:
        monitor.span_features = ()
    batched = coalesce(prepare_jobs(runtime, jobs), max_bytes)
    expected = rows_by_id(one_by_one)
    assert rows_by_id(batched) == expected
    assert len(expected) > 100
    assert len(batched) < len(jobs) / 3  # the calls did travel together
    _runtime.reset_for_tests()
