"""What the SDK records for one monitored model, printed instead of exported.

    .venv/bin/python -m examples.sdk_tour

Trains a scikit-learn classifier on the breast-cancer data set that scikit-learn ships, monitors it with
`instrument.wrap_model`, makes a few predictions and logs late labels, then prints the spans, payload events
and metrics the SDK produced (in-memory OpenTelemetry exporters stand in for the collector).
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import instrument


def _short(value: Any, n: int = 3) -> Any:
    if isinstance(value, dict):
        return {k: _short(v, n) for k, v in list(value.items())[:4]} | (
            {"...": f"{len(value) - 4} more"} if len(value) > 4 else {}
        )
    if isinstance(value, list | tuple) and len(value) > n:
        return [*value[:n], f"... {len(value) - n} more"]
    return value


def main() -> None:
    spans, logs, reader = InMemorySpanExporter(), InMemoryLogRecordExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    instrument.configure(
        service_name="sdk-tour",
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        logger_provider=logger_provider,
    )

    data = load_breast_cancer(as_frame=True)
    X_train, X_live, y_train, y_live = train_test_split(data.data, data.target, test_size=0.2, random_state=0)
    clf = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    model = instrument.wrap_model(clf, model="cancer", version="1", methods=["predict_proba"])

    model.predict_proba(X_live.iloc[:5])  # one call, five predictions
    ids = instrument.last_prediction_ids()
    instrument.log_actuals(model="cancer", ids=ids, actuals=y_live.iloc[:5].tolist())  # labels, later
    instrument.flush()

    print("== spans")
    for span in spans.get_finished_spans():
        took = (span.end_time - span.start_time) / 1e6 if span.end_time and span.start_time else 0.0
        print(f"{span.name}  {took:.3f} ms  {json.dumps(_short(dict(span.attributes)), default=str)}")
    print("\n== log events")
    for record in logs.get_finished_logs():
        log = record.log_record
        print(f"{log.event_name}  {json.dumps(_short(dict(log.attributes or {})))}")
        print(f"  body: {json.dumps(_short(log.body), default=str)}")
    print("\n== metrics")
    data_points = reader.get_metrics_data()
    for rm in data_points.resource_metrics if data_points else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points[:2]:
                    shown = getattr(point, "value", None)
                    if shown is None:
                        shown = f"count={point.count} sum={point.sum:.6g}"
                    print(f"{metric.name}  {dict(point.attributes or {})}  {shown}")
    instrument.shutdown()


if __name__ == "__main__":
    main()
