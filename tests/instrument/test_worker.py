"""The worker's queues: a drain handles what was queued when it began, in slices, and leaves later arrivals for
the next one (chasing them kept the thread wanting the GIL for as long as traffic lasted)."""

from __future__ import annotations

import threading
from typing import Any

from instrument._worker import Worker


def _idle_worker(on_calls: Any, on_payloads: Any, **options: Any) -> Worker:
    worker = Worker(on_calls, on_payloads, max_calls=10_000, max_payload_bytes=1 << 20, interval_s=3600, **options)
    worker.stop(0.1)  # its thread gone: drains happen only where the test calls them
    return worker


def test_a_drain_leaves_what_arrives_meanwhile_for_the_next() -> None:
    slices: list[list[int]] = []

    def on_calls(batch: list[int]) -> None:
        slices.append(batch)
        worker.put_call(1000 + len(slices))  # a producer keeps adding while the drain runs

    worker = _idle_worker(on_calls, lambda batch: None, call_slice=4)
    for i in range(10):
        worker.put_call(i)
    worker.drain()
    assert slices == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]  # in order, in slices, and then it returns
    assert worker.pending == 3
    worker.drain()
    assert slices[3:] == [[1001, 1002, 1003]] and worker.pending == 1


def test_payloads_queued_during_a_drain_wait_too() -> None:
    handled: list[list[str]] = []

    def on_payloads(batch: list[str]) -> None:
        handled.append(batch)
        worker.put_payload("late", 10)

    worker = _idle_worker(lambda batch: None, on_payloads)
    for name in ("a", "b", "c"):
        assert worker.put_payload(name, 10)
    worker.drain()
    assert handled == [["a", "b", "c"]] and worker.pending == 1
    worker.drain()
    assert handled[1] == ["late"]


def test_the_thread_drains_on_its_own() -> None:
    done = threading.Event()
    seen: list[int] = []

    def on_calls(batch: list[int]) -> None:
        seen.extend(batch)
        if len(seen) == 3:
            done.set()

    worker = Worker(on_calls, lambda batch: None, max_calls=100, max_payload_bytes=1024, interval_s=0.01)
    try:
        for i in range(3):
            worker.put_call(i)
        assert done.wait(5) and seen == [0, 1, 2]
    finally:
        worker.stop(1.0)
