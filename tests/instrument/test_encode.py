"""The fast log encoder builds exactly what OpenTelemetry's own encoder builds."""

from __future__ import annotations

import enum
import math
import random
from typing import Any

import numpy as np
import pytest
from opentelemetry.exporter.otlp.proto.common._internal import _encode_value
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as sdk_encode_logs
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from instrument._encode import encode_any, encode_logs


def random_scalar(rng: random.Random) -> Any:
    kind = rng.randrange(8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == 3:
        return rng.randint(0, 300)
    if kind == 4:
        return rng.choice([rng.uniform(-1e300, 1e300), 0.0, -0.0, math.inf, -math.inf, 1e-320])
    if kind == 5:
        return "".join(rng.choice("abcé漢😀 \x00") for _ in range(rng.randrange(0, 200)))
    if kind == 6:
        return f"{rng.getrandbits(128):032x}"
    return rng.uniform(0, 1)


def random_column(rng: random.Random) -> list[Any]:
    n = rng.choice([0, 1, 5, 15, 16, 17, 300])
    mode = rng.randrange(5)
    if mode == 0:
        return [rng.random() for _ in range(n)]
    if mode == 1:
        return [rng.random() < 0.3 for _ in range(n)]
    if mode == 2:
        return [rng.randint(0, 127) for _ in range(n)]
    if mode == 3:
        return [f"{rng.getrandbits(128):032x}" for _ in range(n)]
    return [random_scalar(rng) for _ in range(n)]


@pytest.mark.parametrize("seed", range(40))
def test_random_bodies_encode_identically(seed: int) -> None:
    rng = random.Random(seed)
    body = {
        "ids": random_column(rng),
        "inputs": {f"feature {i}": random_column(rng) for i in range(rng.randrange(1, 8))},
        "outputs": {"score": random_column(rng)},
        "nested": [random_scalar(rng), [random_scalar(rng)], {"k": random_column(rng)}],
    }
    assert AnyValue.FromString(encode_any(body)) == _encode_value(body)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        127,
        128,
        -1,
        2**63 - 1,
        -(2**63),
        1.5,
        math.inf,
        "",
        "x" * 300,
        b"\x00\xff",
        [],
        {},
        (1, "a"),
    ],
)
def test_scalars_and_edges(value: Any) -> None:
    assert AnyValue.FromString(encode_any(value)) == _encode_value(value)


class Colour(str, enum.Enum):  # noqa: UP042 - the older form, whose str() is "Colour.RED"
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


@pytest.mark.parametrize("value", [Colour.RED, Size.BIG, [Colour.RED, Colour.RED], {"k": Size.BIG}])
def test_subclasses_of_scalars_encode_as_their_values(value: Any) -> None:
    assert AnyValue.FromString(encode_any(value)) == _encode_value(value)


def test_nan_round_trips() -> None:
    decoded = AnyValue.FromString(encode_any([math.nan] * 20))
    assert all(math.isnan(v.double_value) for v in decoded.array_value.values)


def test_numpy_values_are_encoded_as_plain_values() -> None:
    assert AnyValue.FromString(encode_any(np.arange(20.0))) == _encode_value(np.arange(20.0).tolist())
    with pytest.raises(TypeError, match="cannot encode object"):
        encode_any(object())


def test_whole_requests_are_identical() -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "svc"}), shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    rng = random.Random(3)
    for scope in ("predwatch", "other"):
        logger = provider.get_logger(scope, "1.0")
        for _ in range(5):
            logger.emit(
                body={"ids": random_column(rng), "inputs": {"a": random_column(rng)}},
                attributes={"k": rng.random(), "list": ["a", "b"]},
                event_name="predwatch.inference",
            )
        logger.emit(body="plain text log", attributes={"x": 1})
        logger.emit(body=None)
    batch = exporter.get_finished_logs()
    assert encode_logs(batch) == sdk_encode_logs(batch).SerializeToString()
