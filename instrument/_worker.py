"""The hand-off between predict calls and the OpenTelemetry pipeline.

A predict call appends one small tuple to a bounded deque and returns; this thread turns the tuples into
metric recordings and log records a few times a second. Appending is O(1) and never blocks; when a queue is
full the newest item is dropped and counted (`predwatch.sdk.dropped`). The thread works through its queue in
slices and yields the GIL between them, so a large backlog does not hold up the serving threads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from instrument._guard import count_dropped, fault

__all__ = ["Worker"]

_SLICE = 32  # calls per GIL hold: ~1 ms of metric recording, then serving threads get a turn
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
    ) -> None:
        self._on_calls = on_calls
        self._on_payloads = on_payloads
        self._max_calls = max_calls
        self._max_payload_bytes = max_payload_bytes
        self._interval_s = interval_s
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
        """Process everything queued so far (the worker thread, `flush()` and shutdown call this)."""
        with self._drain_lock:
            calls = self._calls
            while calls:
                batch = []
                try:
                    for _ in range(_SLICE):
                        batch.append(calls.popleft())
                except IndexError:
                    pass
                try:
                    self._on_calls(batch)
                except Exception as exc:
                    fault("worker.calls", exc)
                if yield_gil:
                    time.sleep(0)  # let serving threads take the GIL between slices
            while self._payloads:
                batch = []
                with self._payload_lock:
                    while self._payloads and len(batch) < _PAYLOAD_SLICE:
                        item, nbytes = self._payloads.popleft()
                        self._payload_bytes -= nbytes
                        batch.append(item)
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
