"""Settings for the SDK: arguments first, then `PREDWATCH_*`, then the standard `OTEL_*` variables.

Every value is validated here, at `configure()` time, with a message that says what to fix; nothing on the
predict path parses or validates configuration.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_RATE_LIMIT", "Settings", "load_settings", "parse_headers", "parse_rate_limit", "parse_sample_rate"]

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
DEFAULT_RATE_LIMIT = 100.0


@dataclass(frozen=True)
class Settings:
    service_name: str
    endpoint: str
    headers: Mapping[str, str] = field(default_factory=dict)
    sample_rate: float = 1.0
    rate_limit: float | None = DEFAULT_RATE_LIMIT  # calls a second traced and recorded, per process; None: all
    service_version: str | None = None
    environment: str | None = None
    disabled: bool = False
    resource_metrics: bool = True  # psutil/NVML gauges
    metric_interval_s: float = 10.0
    export_timeout_s: float = 10.0
    # Bounds on what the SDK holds between a predict call and the export thread.
    max_queue: int = 10_000  # pending calls (metrics)
    max_pending_payload_bytes: int = 64 * 1024 * 1024
    max_event_bytes: int = 1024 * 1024  # a payload larger than this is split into several events
    max_string_len: int = 1024


def _env(name: str, env: Mapping[str, str]) -> str | None:
    value = env.get(name)
    return value if value not in (None, "") else None


def parse_sample_rate(value: object, source: str) -> float:
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{source} must be between 0 and 1 (1 = capture every prediction), got {rate}")
    return rate


def parse_rate_limit(value: object, source: str) -> float | None:
    """Calls a second (a positive number), or None for no limit ("off", "none", "inf" or infinity)."""
    if isinstance(value, str) and value.strip().lower() in ("off", "none", "inf", "infinity", "unlimited"):
        return None
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        rate = math.nan
    if rate == math.inf:
        return None
    if not rate > 0:  # also NaN
        raise ValueError(
            f"{source} must be a positive number of calls per second, or 'off' for no limit, got {value!r} "
            "(sample_rate=0 records nothing)"
        )
    return rate


def parse_headers(value: str | Mapping[str, str], source: str) -> dict[str, str]:
    """`k1=v1,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS format, values URL-encoded) or a mapping."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        pairs = []
        for item in value.split(","):
            if not item.strip():
                continue
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{source} must look like 'key=value,key2=value2', got {item.strip()!r}")
            pairs.append((unquote(key.strip()), unquote(val.strip())))
    headers: dict[str, str] = {}
    for key, val in pairs:
        if not isinstance(key, str) or not isinstance(val, str):
            raise ValueError(f"{source}: header names and values must be strings, got {key!r}: {val!r}")
        headers[key.lower()] = val
    return headers


def _parse_bool(value: str, source: str) -> bool:
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{source} must be true or false, got {value!r}")


def _parse_positive(value: object, source: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be a positive number, got {value!r}") from None
    if not number > 0:
        raise ValueError(f"{source} must be a positive number, got {value!r}")
    return number


def _check_endpoint(endpoint: str, source: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"{source} must be the collector's base URL such as http://127.0.0.1:4318 "
            f"(the SDK appends /v1/traces, /v1/logs, /v1/metrics), got {endpoint!r}"
        )
    path = parts.path.rstrip("/")
    for suffix in ("/v1/traces", "/v1/logs", "/v1/metrics"):
        if path.endswith(suffix):
            raise ValueError(f"{source} is a base URL: drop {suffix!r} from {endpoint!r}")
    return endpoint.rstrip("/")


def load_settings(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    sample_rate: float | None = None,
    rate_limit: float | str | None = None,
    headers: Mapping[str, str] | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    resource_metrics: bool | None = None,
    metric_interval_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting; raise ValueError naming the argument or variable at fault."""
    env = os.environ if env is None else env

    disabled = False
    for var in ("PREDWATCH_DISABLED", "OTEL_SDK_DISABLED"):
        raw = _env(var, env)
        if raw is not None and _parse_bool(raw, var):
            disabled = True

    if endpoint is not None:
        resolved_endpoint = _check_endpoint(endpoint, "endpoint=")
    elif (raw := _env("PREDWATCH_ENDPOINT", env)) is not None:
        resolved_endpoint = _check_endpoint(raw, "PREDWATCH_ENDPOINT")
    elif (raw := _env("OTEL_EXPORTER_OTLP_ENDPOINT", env)) is not None:
        resolved_endpoint = _check_endpoint(raw, "OTEL_EXPORTER_OTLP_ENDPOINT")
    else:
        resolved_endpoint = DEFAULT_ENDPOINT

    if headers is not None:
        resolved_headers = parse_headers(headers, "headers=")
    elif (raw := _env("PREDWATCH_HEADERS", env)) is not None:
        resolved_headers = parse_headers(raw, "PREDWATCH_HEADERS")
    elif (raw := _env("OTEL_EXPORTER_OTLP_HEADERS", env)) is not None:
        resolved_headers = parse_headers(raw, "OTEL_EXPORTER_OTLP_HEADERS")
    else:
        resolved_headers = {}
    if (token := _env("PREDWATCH_INGEST_TOKEN", env)) is not None and "authorization" not in resolved_headers:
        resolved_headers["authorization"] = f"Bearer {token}"

    if sample_rate is not None:
        rate = parse_sample_rate(sample_rate, "sample_rate=")
    elif (raw := _env("PREDWATCH_SAMPLE_RATE", env)) is not None:
        rate = parse_sample_rate(raw, "PREDWATCH_SAMPLE_RATE")
    else:
        rate = 1.0

    if rate_limit is not None:
        limit = parse_rate_limit(rate_limit, "rate_limit=")
    elif (raw := _env("PREDWATCH_RATE_LIMIT", env)) is not None:
        limit = parse_rate_limit(raw, "PREDWATCH_RATE_LIMIT")
    else:
        limit = DEFAULT_RATE_LIMIT

    name: object = f"unknown_service:{os.path.basename(sys.argv[0]) or 'python'}"
    name_source = "service_name"
    for candidate, where in (
        (service_name, "service_name"),
        (_env("PREDWATCH_SERVICE_NAME", env), "PREDWATCH_SERVICE_NAME"),
        (_env("OTEL_SERVICE_NAME", env), "OTEL_SERVICE_NAME"),
    ):
        if candidate:
            name, name_source = candidate, where
            break
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{name_source} must be a non-empty string, got {name!r}")

    if resource_metrics is None:
        raw = _env("PREDWATCH_RESOURCE_METRICS", env)
        resource_metrics = True if raw is None else _parse_bool(raw, "PREDWATCH_RESOURCE_METRICS")

    if metric_interval_s is not None:
        interval = _parse_positive(metric_interval_s, "metric_interval_s=")
    elif (raw := _env("OTEL_METRIC_EXPORT_INTERVAL", env)) is not None:
        interval = _parse_positive(raw, "OTEL_METRIC_EXPORT_INTERVAL") / 1000.0  # milliseconds
    else:
        interval = 10.0

    return Settings(
        service_name=name,
        endpoint=resolved_endpoint,
        headers=resolved_headers,
        sample_rate=rate,
        rate_limit=limit,
        service_version=service_version or _env("PREDWATCH_SERVICE_VERSION", env),
        environment=environment or _env("PREDWATCH_ENVIRONMENT", env),
        disabled=disabled,
        resource_metrics=resource_metrics,
        metric_interval_s=interval,
    )
