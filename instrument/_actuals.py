"""`log_actuals`: ground truth for earlier predictions, as a `predwatch.actuals` log event."""

from __future__ import annotations

from collections.abc import Sequence
from time import time_ns
from typing import Any

from instrument import _runtime, semconv
from instrument._config import parse_sample_rate
from instrument._guard import count_dropped, fault
from instrument._payload import Payload, estimate_bytes
from instrument._values import clean_list, sample_mask

__all__ = ["log_actuals"]


def log_actuals(
    model: str,
    ids: Sequence[str],
    actuals: Sequence[Any],
    version: str | None = None,
    sample_rate: float | None = None,
) -> int:
    """Send the true outcomes for predictions, matched by prediction id; returns how many were sent.

    Labels can arrive hours later and from another process. With payload sampling (`sample_rate` < 1, the
    same value as the model's monitor), only the ids whose predictions were captured are sent — the sampling
    rule depends on the id alone. Mismatched lengths or a missing model raise ValueError: this is called from
    the application's own code, not inside predict.
    """
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must name the model, got {model!r}")
    ids = [str(i) for i in ids]
    values = list(actuals.tolist() if hasattr(actuals, "tolist") else actuals)
    if len(ids) != len(values):
        raise ValueError(f"ids and actuals must have the same length, got {len(ids)} and {len(values)}")
    rate = None if sample_rate is None else parse_sample_rate(sample_rate, "sample_rate=")
    runtime = _runtime.current()
    if runtime is None or not ids:
        return 0
    try:
        rate = runtime.settings.sample_rate if rate is None else rate
        if rate < 1.0:
            keep = [i for i, take in enumerate(sample_mask(ids, rate)) if take]
            ids = [ids[i] for i in keep]
            values = [values[i] for i in keep]
            if not ids:
                return 0
        values = clean_list(values, runtime.settings.max_string_len)
        attrs: dict[str, Any] = {semconv.ATTR_MODEL_NAME: model, semconv.ATTR_PAYLOAD_ROWS: len(ids)}
        if version is not None:
            attrs[semconv.ATTR_MODEL_VERSION] = str(version)
        nbytes = estimate_bytes(len(ids), {"a": values})
        payload = Payload(
            event_name=semconv.EVENT_ACTUALS,
            attributes=attrs,
            time_ns=time_ns(),
            span_context=None,
            ids=ids,
            columns={semconv.BODY_ACTUALS: values},
            nbytes=nbytes,
            max_event_bytes=runtime.settings.max_event_bytes,
        )
        if not runtime.worker.put_payload(lambda rt: rt.emit(payload), nbytes):
            return 0
        return len(ids)
    except Exception as exc:
        fault("log_actuals", exc)
        count_dropped("actuals_failed", len(ids))
        return 0
