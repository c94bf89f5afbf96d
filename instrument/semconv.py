"""Names on the wire: the contract between the SDK and the collector (see DESIGN.md, "Wire contract").

The collector imports this module; nothing here may import anything else from `instrument`.
"""

from __future__ import annotations

__all__ = [
    "ATTR_BATCH_SIZE",
    "BATCH_BUCKETS",
    "ATTR_DATA_SOURCE",
    "ATTR_ERROR_TYPE",
    "ATTR_FEATURES",
    "ATTR_MODEL_NAME",
    "ATTR_MODEL_TASK",
    "ATTR_MODEL_VERSION",
    "ATTR_OUTCOME",
    "ATTR_PAYLOAD_CHUNK",
    "ATTR_PAYLOAD_CHUNKS",
    "ATTR_PAYLOAD_ROWS",
    "ATTR_PAYLOAD_SAMPLED",
    "ATTR_REASON",
    "ATTR_SAMPLE_RATE",
    "BODY_ACTUALS",
    "BODY_IDS",
    "BODY_INPUTS",
    "BODY_OUTPUTS",
    "COL_LABEL",
    "COL_PREDICTION",
    "COL_SCORE",
    "DURATION_BUCKETS_S",
    "EVENT_ACTUALS",
    "EVENT_INFERENCE",
    "METRIC_BATCH_SIZE",
    "METRIC_COERCED",
    "METRIC_DROPPED",
    "METRIC_DURATION",
    "METRIC_ERRORS",
    "METRIC_PREDICTIONS",
    "OUTCOME_ERROR",
    "OUTCOME_OK",
    "SCOPE_NAME",
    "SPAN_NAME_PREFIX",
    "TASKS",
]

SCOPE_NAME = "predwatch"

# Span `predict {model}` and the attributes shared by spans, payload events and metrics.
SPAN_NAME_PREFIX = "predict"
ATTR_MODEL_NAME = "predwatch.model.name"
ATTR_MODEL_VERSION = "predwatch.model.version"
ATTR_MODEL_TASK = "predwatch.model.task"
ATTR_FEATURES = "predwatch.model.features"  # string array: the input features the model was called with
ATTR_DATA_SOURCE = "predwatch.model.data_source"
ATTR_BATCH_SIZE = "predwatch.batch.size"
ATTR_PAYLOAD_SAMPLED = "predwatch.payload.sampled"
ATTR_SAMPLE_RATE = "predwatch.payload.sample_rate"
ATTR_PAYLOAD_ROWS = "predwatch.payload.rows"
ATTR_PAYLOAD_CHUNK = "predwatch.payload.chunk"  # 0-based index when one call's payload is split
ATTR_PAYLOAD_CHUNKS = "predwatch.payload.chunks"
ATTR_OUTCOME = "predwatch.outcome"
ATTR_ERROR_TYPE = "error.type"  # OpenTelemetry's own name
ATTR_REASON = "predwatch.reason"

OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"

# Log events (Logs API, `event_name`) and the keys of their AnyValue-map bodies.
EVENT_INFERENCE = "predwatch.inference"
EVENT_ACTUALS = "predwatch.actuals"
BODY_IDS = "ids"
BODY_INPUTS = "inputs"
BODY_OUTPUTS = "outputs"
BODY_ACTUALS = "actuals"

# Output columns after normalisation.
COL_SCORE = "score"
COL_LABEL = "label"
COL_PREDICTION = "prediction"

TASKS = ("binary_classification", "multiclass_classification", "regression")

# Metrics.
METRIC_PREDICTIONS = "predwatch.predictions"  # counter {prediction}: rows, by model, version, outcome
METRIC_DURATION = "predwatch.predict.duration"  # histogram, seconds, one value per call
METRIC_BATCH_SIZE = "predwatch.batch.size"  # histogram {row}, one value per call
METRIC_DROPPED = "predwatch.sdk.dropped"  # counter: telemetry the SDK dropped, by reason
METRIC_ERRORS = "predwatch.sdk.errors"  # counter: faults inside the SDK itself, by where

# Fine enough for sub-millisecond models: roughly 1-1.5-2-3-5-7 per decade from 10 us to 60 s.
DURATION_BUCKETS_S: tuple[float, ...] = tuple(
    round(m * 10.0**e, 9) for e in range(-5, 2) for m in (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
)
METRIC_COERCED = "predwatch.sdk.coerced"  # counter: values the SDK turned into strings or truncated, by reason

# Rows per call: powers of two up to 65,536.
BATCH_BUCKETS: tuple[float, ...] = tuple(float(2**i) for i in range(17))
