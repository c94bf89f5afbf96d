"""predwatch's SDK: monitor a model's predict calls with OpenTelemetry.

>>> import instrument
>>> instrument.configure(service_name="churn-api", endpoint="http://127.0.0.1:4318")
>>> @instrument.monitor(model="churn", version="3", task="binary_classification")
... def predict(X):
...     return clf.predict_proba(X)
>>> app.add_middleware(instrument.ASGIMiddleware, model="churn", version="3")  # Starlette, FastAPI: POST /predict
>>> flask_app.wsgi_app = instrument.WSGIMiddleware(flask_app.wsgi_app, model="churn", version="3")
"""

from __future__ import annotations

from typing import Any

from instrument._actuals import log_actuals
from instrument._asgi import ASGIMiddleware
from instrument._context import last_prediction_ids
from instrument._monitor import ModelMonitor
from instrument._runtime import configure as _configure
from instrument._runtime import flush, shutdown
from instrument._version import __version__
from instrument._wrap import monitor, wrap_model
from instrument._wsgi import WSGIMiddleware

__all__ = [
    "ASGIMiddleware",
    "ModelMonitor",
    "WSGIMiddleware",
    "__version__",
    "configure",
    "flush",
    "last_prediction_ids",
    "log_actuals",
    "monitor",
    "shutdown",
    "wrap_model",
]


def configure(
    service_name: str | None = None,
    endpoint: str | None = None,
    sample_rate: float | None = None,
    headers: dict[str, str] | None = None,
    *,
    rate_limit: float | str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    resource_metrics: bool | None = None,
    metric_interval_s: float | None = None,
) -> None:
    """Set up where and how the SDK sends telemetry. Optional: the first monitored call does it from the env.

    Each argument falls back to an environment variable, then a default: `service_name` (PREDWATCH_SERVICE_NAME,
    OTEL_SERVICE_NAME), `endpoint` — the collector's base URL (PREDWATCH_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT,
    http://127.0.0.1:4318), `sample_rate` — the share of predictions whose inputs and outputs are captured
    (PREDWATCH_SAMPLE_RATE, 1.0), `rate_limit` — at most this many calls a second per process are traced and
    recorded, an even sample of the rest only counted in metrics; "off" for no limit (PREDWATCH_RATE_LIMIT, 100),
    `headers` (PREDWATCH_HEADERS, OTEL_EXPORTER_OTLP_HEADERS; PREDWATCH_INGEST_TOKEN
    adds a bearer token). PREDWATCH_DISABLED=true or OTEL_SDK_DISABLED=true turn the SDK into a pass-through.

    Providers passed here, or already installed globally by the application, are used as they are; for the
    others the SDK builds its own OTLP/HTTP pipeline (gzip, delta temporality). Calling it again with the same
    arguments does nothing; with other arguments it flushes the old pipeline and builds a new one. A bad
    value raises ValueError naming the argument or variable to fix.
    """
    args = {
        "service_name": service_name,
        "endpoint": endpoint,
        "sample_rate": sample_rate,
        "rate_limit": rate_limit,
        "headers": headers,
        "service_version": service_version,
        "environment": environment,
        "tracer_provider": tracer_provider,
        "meter_provider": meter_provider,
        "logger_provider": logger_provider,
        "resource_metrics": resource_metrics,
        "metric_interval_s": metric_interval_s,
    }
    _configure(**{k: v for k, v in args.items() if v is not None})
