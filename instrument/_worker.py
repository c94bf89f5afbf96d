"""The hand-off between predict calls and the OpenTelemetry pipeline.

A predict call appends one small tuple to a bounded deque and returns; this thread turns the tuples into
metric recordings and log records a few times a second. Appending is O(1) and never blocks; when a queue is
full the newest item is dropped and counted (`predwatch.sdk.dropped`). The thread works through its queue in
slices and yields the GIL between them, so a large backlog does not hold up the serving threads.

Each wake-up processes what was queued when it began, then the thread sleeps again: calls that keep arriving
meanwhile wait for the next wake-up. Chasing them instead kept the thread wanting the GIL for as long as the
traffic lasted, and an asyncio server releases the GIL at every turn of its event loop: the serving thread
then lost it to this one at every turn and waited for it back (~11 µs per FastAPI request, measured in process).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from instrument._guard import count_dropped, fault

__all__ = ["Worker"]

_SLICE = 32  # calls per GIL hold with OpenTelemetry instruments (~1 ms of metric recording)
AGGREGATED_SLICE = 1024  # with the SDK's own aggregation (a few hundred µs), see Worker(call_slice=)
_PAYLOAD_SLICE = 64  # payload jobs per batch: calls of one batch are sent as one event per model


class Worker:
    def __init__(
        self,
        on_calls: Callable[[list[Any]], None],
        on_payloads: Callable[[list[Any]], None],
        *,
        max_calls: int,
        max_payload_bytes: int,
        interval_s: float = 0.1,
        call_slice: int = _SLICE,
    ) -> None:
        self._on_calls = on_calls
        self._on_payloads = on_payloads
        self._max_calls = max_calls
        self._max_payload_bytes = max_payload_bytes
        self._interval_s = interval_s
        self._call_slice = call_slice
        self._calls: deque[Any] = deque()
        self._payloads: deque[tuple[Any, int]] = deque()
        self._payload_bytes = 0
        self._payload_lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="predwatch-worker", daemon=True)
        self._thread.start()

    def put_call(self, item: Any) -> None:
        if len(self._calls) >= self._max_calls:
            count_dropped("queue_full", message="the SDK's call queue is full; dropping metrics for some calls")
            return
        self._calls.append(item)

    def put_payload(self, item: Any, nbytes: int) -> bool:
        with self._payload_lock:
            if self._payload_bytes + nbytes > self._max_payload_bytes:
                accepted = False
            else:
                self._payload_bytes += nbytes
                self._payloads.append((item, nbytes))
                accepted = True
        if not accepted:
            count_dropped("payload_queue_full", message="the SDK's payload queue is full; dropping payloads")
        return accepted

    @property
    def pending(self) -> int:
        return len(self._calls) + len(self._payloads)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            self.drain(yield_gil=True)

    def drain(self, yield_gil: bool = False) -> None:
        """Process everything queued so far (the worker thread, `flush()` and shutdown call this); what is queued
        meanwhile waits for the next drain."""
        with self._drain_lock:
            calls = self._calls
            left = len(calls)
            while left > 0:
                take = min(left, self._call_slice)
                left -= take
                batch = [calls.popleft() for _ in range(take)]  # only a drain (under its lock) takes
                try:
                    self._on_calls(batch)
                except Exception as exc:
                    fault("worker.calls", exc)
                if yield_gil:
                    time.sleep(0)  # let serving threads take the GIL between slices
            left = len(self._payloads)
            while left > 0:
                batch = []
                with self._payload_lock:
                    while self._payloads and left > 0 and len(batch) < _PAYLOAD_SLICE:
                        item, nbytes = self._payloads.popleft()
                        self._payload_bytes -= nbytes
                        batch.append(item)
                        left -= 1
                if not batch:
                    break
                try:
                    self._on_payloads(batch)
                except Exception as exc:
                    fault("worker.payload", exc)
                if yield_gil:
                    time.sleep(0)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopped = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        self.drain()
