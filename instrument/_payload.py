"""The bodies of `predwatch.inference` and `predwatch.actuals` log events, split under a byte cap.

Body (an AnyValue map): {"ids": [str, ...], "inputs": {feature: [v, ...]}, "outputs": {column: [v, ...]}}, or
{"ids": [...], "actuals": [...]}. A payload whose estimated encoded size exceeds `max_event_bytes` becomes
several events of consecutive rows, each carrying `predwatch.payload.chunk`/`.chunks`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanContext

from instrument import semconv

__all__ = ["Payload", "estimate_bytes"]

_NUMBER_BYTES = 11  # an AnyValue double on the wire: tag, length, tag, 8 bytes
_ID_BYTES = 36


def estimate_bytes(n: int, *tables: Mapping[str, list[Any]]) -> int:
    """Roughly what the rows weigh as OTLP protobuf (for the queue budget and for splitting).

    A column is sized by its first value: numbers at 11 bytes, strings at their length + 4.
    """
    total = _ID_BYTES * n
    for table in tables:
        for name, values in table.items():
            first = values[0] if values else None
            per_value = len(first) + 4 if type(first) is str else _NUMBER_BYTES
            total += len(name) + 8 + per_value * len(values)
    return total


@dataclass(slots=True)
class Payload:
    event_name: str
    attributes: Mapping[str, Any]
    time_ns: int
    span_context: SpanContext | None
    ids: list[str]
    columns: Mapping[str, Mapping[str, list[Any]] | list[Any]]  # {"inputs": {...}, "outputs": {...}} or actuals
    nbytes: int
    max_event_bytes: int

    def events(self) -> Iterator[tuple[dict[str, Any], Mapping[str, Any]]]:
        n = len(self.ids)
        chunks = max(1, -(-self.nbytes // self.max_event_bytes))
        if chunks == 1 or n <= 1:
            yield {semconv.BODY_IDS: self.ids, **self.columns}, self.attributes
            return
        step = -(-n // chunks)
        chunks = -(-n // step)
        for index, start in enumerate(range(0, n, step)):
            stop = start + step
            body: dict[str, Any] = {semconv.BODY_IDS: self.ids[start:stop]}
            for key, table in self.columns.items():
                if isinstance(table, Mapping):
                    body[key] = {name: values[start:stop] for name, values in table.items()}
                else:
                    body[key] = table[start:stop]
            attrs = {
                **self.attributes,
                semconv.ATTR_PAYLOAD_CHUNK: index,
                semconv.ATTR_PAYLOAD_CHUNKS: chunks,
                semconv.ATTR_PAYLOAD_ROWS: len(body[semconv.BODY_IDS]),
            }
            yield body, attrs
