"""What the receiver hands to the rest of the collector: plain records decoded from OTLP.

The receiver (OTLP/HTTP, OTLP/gRPC, the JSON API) turns wire data into these; sketches, windows, the label
join and the operations store consume them. Nothing here knows about protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ActualsBatch", "Column", "InferenceBatch", "MetricPoint", "PredictSpan", "Resource"]

# Resource attributes that travel with every record: service.name, service.instance.id, host.name, ...
Resource = dict[str, Any]
Column = list[Any] | npt.NDArray[np.float64]  # see InferenceBatch


@dataclass(slots=True)
class InferenceBatch:
    """One `predwatch.inference` event: columnar inputs and outputs of `len(ids)` rows.

    A column is a list of plain Python scalars: None for missing, float NaN/inf kept as such, str, bool, int;
    or, from the OTLP receivers, a float64 numpy array when it holds doubles only (NaN/inf kept, none missing).
    """

    model: str
    version: str
    time_s: float  # event time, Unix seconds (log record timestamp, else observed time)
    ids: list[str]
    inputs: dict[str, Column]
    outputs: dict[str, Column]
    task: str | None = None
    resource: Resource = field(default_factory=dict)
    trace_id: str | None = None  # hex, when the event carried a trace context
    span_id: str | None = None


@dataclass(slots=True)
class ActualsBatch:
    """Ground truth for earlier predictions, joined by prediction id (`predwatch.actuals` or POST /api/v1/actuals)."""

    model: str
    version: str | None
    time_s: float
    ids: list[str]
    actuals: list[Any]
    resource: Resource = field(default_factory=dict)


@dataclass(slots=True)
class PredictSpan:
    """A `predict {model}` span: one call's latency, outcome and batch size."""

    model: str
    version: str
    time_s: float  # span start, Unix seconds
    duration_s: float
    ok: bool
    batch_size: int
    error_type: str | None = None
    resource: Resource = field(default_factory=dict)


@dataclass(slots=True)
class MetricPoint:
    """One data point of a metric the collector understands (the SDK's predwatch.* and process/system gauges).

    kind: "sum" (delta or cumulative, see `monotonic`/`delta`), "gauge" or "histogram". For histograms `value` is
    the sum, and `bounds`/`counts` hold the explicit buckets (len(counts) == len(bounds) + 1).
    """

    name: str
    kind: str
    time_s: float
    value: float
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: Resource = field(default_factory=dict)
    start_time_s: float | None = None
    delta: bool = True
    count: int = 0
    bounds: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
