"""`make bench`: every benchmark, each in its own process (so memory figures are its own), in one run.

.venv/bin/python -m benchmarks [name ...]
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

BENCHMARKS = ["sdk_overhead", "middleware", "collector_ingest", "bench_store", "bench_states", "label_join"]


def main() -> int:
    names = sys.argv[1:] or BENCHMARKS
    failed = 0
    for name in names:
        if importlib.util.find_spec(f"benchmarks.{name}") is None:
            print(f"== {name}: not present", flush=True)
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"])
        print(f"   ({time.perf_counter() - started:.0f} s)\n", flush=True)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
