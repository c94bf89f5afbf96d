"""The SDK's GPU gauges on a real NVIDIA GPU, against nvidia-smi's own readings. Not part of `make test`
(CI has no GPU); run on a machine with one and the SDK's dependencies, from the repository root:

    python -m tests.device.nvml_check

It configures the SDK's own pipeline against a real OTLP/HTTP endpoint (tests/instrument/otlp_server.py), puts
4 GiB on GPU 0 and keeps it busy with matrix products (PyTorch), and reads what the SDK exported:
`hw.gpu.memory.limit` must equal nvidia-smi's total for each GPU (within its 1 MiB rounding),
`hw.gpu.memory.usage` must have grown by the 4 GiB and agree with nvidia-smi read at the same moment, and
`hw.gpu.utilization` must be high while the products run and in [0, 1] always; every point names its GPU by
UUID (`hw.id`). Exits 1 with what differed, 0 when everything held.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import instrument
from instrument import _runtime
from tests.instrument.otlp_server import OTLPServer, attributes

MIB = 2**20


def smi() -> dict[str, dict[str, float]]:
    """nvidia-smi's reading per GPU UUID: total and used memory in bytes, utilisation in 0..1."""
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=uuid,memory.total,memory.used,utilization.gpu", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in out.strip().splitlines():
        uuid, total, used, util = (part.strip() for part in line.split(","))
        found[uuid] = {"total": float(total) * MIB, "used": float(used) * MIB, "util": float(util) / 100.0}
    return found


def points(server: OTLPServer, name: str) -> list[tuple[dict[str, Any], float, int]]:
    """(attributes, value, time) of every exported point of metric `name`."""
    found = []
    for request in server.requests["/v1/metrics"]:
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != name:
                        continue
                    data = metric.gauge if metric.HasField("gauge") else metric.sum
                    for p in data.data_points:
                        value = p.as_double if p.HasField("as_double") else p.as_int
                        found.append((attributes(p.attributes), float(value), p.time_unix_nano))
    return found


def main() -> int:
    import torch

    device = os.environ.get("NVML_CHECK_DEVICE", "cuda:0")  # "cpu": a dry run of the script itself
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    failures: list[str] = []
    before = smi()
    print("nvidia-smi before:", before)
    with OTLPServer() as server:
        instrument.configure(service_name="nvml-check", endpoint=server.url, metric_interval_s=1)
        assert _runtime.current() is not None
        time.sleep(1.5)  # one export with the GPU idle
        block = torch.empty(4 * 2**30, dtype=torch.uint8, device=device)
        a = torch.randn(8192, 8192, device=device)
        busy_readings = []
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            for _ in range(20):
                a = (a @ a).clamp_(-1, 1)
            sync()
            busy_readings.append(smi())
        during = smi()
        instrument.flush()
        del block, a
        sync()
        time.sleep(0.5)
        instrument.shutdown()

    limits, usage, util = (
        points(server, n) for n in ("hw.gpu.memory.limit", "hw.gpu.memory.usage", "hw.gpu.utilization")
    )
    print(f"exported: {len(limits)} limit, {len(usage)} usage, {len(util)} utilization points")
    if not limits or not usage or not util:
        return fail(["no GPU metrics were exported: " + repr([len(limits), len(usage), len(util)])])
    for attrs, value, _ in limits:
        gpu = before.get(str(attrs.get("hw.id")))
        if gpu is None:
            failures.append(f"hw.id {attrs.get('hw.id')!r} is not a GPU nvidia-smi knows ({list(before)})")
        elif abs(value - gpu["total"]) > MIB:
            failures.append(f"hw.gpu.memory.limit {value:.0f} B, nvidia-smi says {gpu['total']:.0f} B")
        if attrs.get("hw.type") != "gpu" or not attrs.get("hw.name"):
            failures.append(f"attributes of a limit point: {attrs}")
    first_uuid = next(iter(before))
    own = [(value, t) for attrs, value, t in usage if attrs.get("hw.id") == first_uuid]
    low, high = min(v for v, _ in own), max(v for v, _ in own)
    print(f"hw.gpu.memory.usage on GPU 0: {low / 2**30:.2f} .. {high / 2**30:.2f} GiB over {len(own)} exports")
    if high - low < 4 * 2**30 * 0.98:
        failures.append(f"usage grew by {(high - low) / 2**30:.2f} GiB while 4 GiB were allocated")
    smi_high = max(reading[first_uuid]["used"] for reading in [during, *busy_readings])
    if abs(high - smi_high) > 0.05 * smi_high + 64 * MIB:
        failures.append(f"peak usage {high / 2**30:.2f} GiB, nvidia-smi's peak {smi_high / 2**30:.2f} GiB")
    values = [v for attrs, v, _ in util if attrs.get("hw.id") == first_uuid]
    print(f"hw.gpu.utilization on GPU 0: {values}")
    smi_busy = max(reading[first_uuid]["util"] for reading in busy_readings)
    print(f"nvidia-smi's utilisation while busy: up to {smi_busy:.2f}")
    if not all(0.0 <= v <= 1.0 for v in values):
        failures.append(f"utilization outside [0, 1]: {values}")
    if max(values) < 0.5:
        failures.append(f"utilization stayed at {max(values):.2f} while the GPU ran matrix products")
    return fail(failures)


def fail(failures: list[str]) -> int:
    for failure in failures:
        print("FAIL:", failure)
    print("OK: the GPU gauges agree with nvidia-smi" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
