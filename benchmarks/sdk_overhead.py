"""SDK overhead per predict call, against a bare call and a bare OpenTelemetry span (README "Performance").

All numbers come from one run in one process, exporting over OTLP/HTTP to a do-nothing server in another
process: the median added cost on the caller's thread, and the CPU the process spends per call in total
(the caller plus the SDK's and OpenTelemetry's background threads, protobuf encoding included).
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import instrument
from instrument import _runtime


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    """The base URL of a do-nothing OTLP/HTTP server in a child process."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.otlp_sink"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        proc.terminate()
        proc.wait(5)


def per_call(
    fn: Callable[[], object], n: int, settle: Callable[[], object] | None = None, settle_every: int = 500
) -> tuple[float, float]:
    """(median wall µs on the caller's thread, process CPU µs per call including background threads)."""
    times = []
    gc.collect()
    cpu0 = time.process_time()
    for i in range(n):
        t = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t)
        if settle is not None and i % settle_every == settle_every - 1:
            settle()
    if settle is not None:
        settle()
    cpu = (time.process_time() - cpu0) / n * 1e6
    return statistics.median(times) / 1000.0, cpu


def run(n: int = 20_000) -> dict[str, float]:
    with otlp_sink() as endpoint:
        return _run(n, endpoint)


def _run(n: int, endpoint: str) -> dict[str, float]:
    # The baseline: a span with 5 attributes through a BatchSpanProcessor and the same OTLP exporter.
    tp = TracerProvider(shutdown_on_exit=False)
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    tracer = tp.get_tracer("bench")
    attrs = {f"attr.{i}": f"value-{i}" for i in range(5)}

    def bare_predict(x: Any) -> float:
        return 0.5

    def bare_span() -> None:
        with tracer.start_as_current_span("predict", attributes=attrs):
            bare_predict(None)

    _runtime.reset_for_tests()
    # The SDK's own pipeline, as users get it, but without its rate limit: a sampled call here is one the SDK
    # records (with the limit, all but 100 calls a second would cost what an unsampled one does).
    instrument.configure(service_name="bench", endpoint=endpoint, rate_limit="off")
    row = {f"feature_{i}": float(i) for i in range(20)}
    batch = np.random.default_rng(0).normal(size=(1000, 20))

    unsampled = instrument.monitor(model="bench", version="1", sample_rate=0.0)(bare_predict)
    sampled = instrument.monitor(model="bench", version="1", task="regression", sample_rate=1.0)(bare_predict)

    def batch_predict(x: Any) -> Any:
        return np.zeros(len(x))

    sampled_batch = instrument.monitor(model="bench", version="1", task="regression")(batch_predict)

    def settle() -> None:
        instrument.flush()

    results: dict[str, float] = {}
    results["bare_call_us"], _ = per_call(lambda: bare_predict(row), n)
    results["bare_span_us"], results["bare_span_cpu_us"] = per_call(bare_span, n, tp.force_flush)
    results["unsampled_us"], results["unsampled_cpu_us"] = per_call(lambda: unsampled(row), n, settle)
    results["sampled_row_us"], results["sampled_row_cpu_us"] = per_call(lambda: sampled(row), n, settle)
    results["sampled_batch_us"], results["sampled_batch_cpu_us"] = per_call(
        lambda: sampled_batch(batch), max(200, n // 50), settle, 50
    )
    bare = results["bare_call_us"]
    for key in ("unsampled", "sampled_row", "sampled_batch"):
        results[f"{key}_added_us"] = results[f"{key}_us"] - bare
    results["unsampled_vs_span"] = results["unsampled_added_us"] / results["bare_span_us"]
    results["sampled_row_vs_span"] = results["sampled_row_added_us"] / results["bare_span_us"]
    instrument.shutdown()
    tp.shutdown()
    _runtime.reset_for_tests()
    return results


def report(results: dict[str, float]) -> str:
    r = results

    def line(label: str, key: str, extra: str = "") -> str:
        cpu = r[key.removesuffix("_us").removesuffix("_added") + "_cpu_us"]
        return f"  {label:<40}{r[key]:8.2f} us   cpu {cpu:8.1f} us{extra}"

    return "\n".join(
        [
            "SDK cost per call: added median latency on the caller's thread; cpu = whole process, background included",
            f"  {'bare call':<40}{r['bare_call_us']:8.2f} us",
            line("bare OTel span, 5 attrs, batch processor", "bare_span_us"),
            line("unsampled call", "unsampled_added_us", f"   = {r['unsampled_vs_span']:.3f} x span"),
            line("sampled 1 row x 20 features", "sampled_row_added_us", f"   = {r['sampled_row_vs_span']:.3f} x span"),
            line("sampled 1000 x 20 numpy batch", "sampled_batch_added_us"),
            "  targets: unsampled <= 0.25 x bare span; sampled row <= 1.5 x bare span; 1000 x 20 batch <= 2 ms",
        ]
    )


if __name__ == "__main__":
    print(report(run()))
