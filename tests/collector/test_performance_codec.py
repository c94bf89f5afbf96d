"""The blob envelope and body reader: every malformed input is a ValueError, never another exception.

Bodies are mutated and then re-packed with a correct checksum, so the mutations reach the state readers'
own validation instead of stopping at the CRC.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
import pytest

from collector.performance import performance_metrics, state_from_bytes, zero_state
from collector.performance_codec import KIND_CLASSIFICATION, KIND_REGRESSION, Reader, kind_of, pack, unpack


def body_of(blob: bytes) -> bytes:
    return zlib.decompress(blob[6:])


def sample_blobs() -> list[bytes]:
    rng = np.random.default_rng(0)
    binary = zero_state("binary_classification")
    y = rng.integers(0, 2, 200)
    s = rng.random(200)
    binary.update(y, labels=(s >= 0.5).astype(int), scores=s)
    binary.update(["a", None], labels=["a", "b"], scores=[0.5, 0.1])
    multi = zero_state("multiclass_classification")
    multi.update(rng.integers(0, 5, 200).tolist() + ["x"], labels=rng.integers(0, 6, 201))
    reg = zero_state("regression")
    reg.update(rng.normal(size=50), predictions=rng.normal(size=50))
    return [binary.to_bytes(), multi.to_bytes(), reg.to_bytes()]


def test_envelope() -> None:
    blob = pack(KIND_REGRESSION, b"abc")
    assert kind_of(blob) == KIND_REGRESSION
    reader = unpack(KIND_REGRESSION, blob)
    assert reader.raw(3) == b"abc"
    reader.done()
    with pytest.raises(ValueError, match="kind"):
        unpack(KIND_CLASSIFICATION, blob)
    with pytest.raises(ValueError, match="checksum"):
        unpack(KIND_REGRESSION, blob[:-1] + bytes([blob[-1] ^ 1]))
    payload = zlib.compress(b"abc")
    for bad in (payload[:-2], payload + b"x", b"not zlib"):
        with pytest.raises(ValueError):
            unpack(KIND_REGRESSION, struct.pack("<BBI", 1, KIND_REGRESSION, zlib.crc32(bad)) + bad)


def test_reader_bounds() -> None:
    reader = Reader(struct.pack("<I", 7) + b"xy")
    assert reader.take(struct.Struct("<I")) == (7,)
    with pytest.raises(ValueError, match="truncated"):
        reader.take(struct.Struct("<I"))
    with pytest.raises(ValueError, match="truncated"):
        reader.array("<u4", 1)
    with pytest.raises(ValueError, match="trailing"):
        reader.done()
    assert reader.raw(2) == b"xy"
    reader.done()


def test_truncated_and_extended_bodies_are_refused() -> None:
    for blob in sample_blobs():
        kind, body = blob[1], body_of(blob)
        for bad in [body[:i] for i in range(len(body))] + [body + b"\x00"]:
            with pytest.raises(ValueError, match="invalid"):
                state_from_bytes(pack(kind, bad))


@pytest.mark.parametrize("seed", range(4))
def test_mutated_bodies_are_refused_or_readable(seed: int) -> None:
    rng = np.random.default_rng(seed)
    outcomes: dict[str, int] = {"refused": 0, "read": 0}
    for blob in sample_blobs():
        kind, body = blob[1], body_of(blob)
        for _ in range(400):
            mutated = bytearray(body)
            for i in rng.choice(len(body), size=int(rng.integers(1, 4)), replace=False):
                mutated[i] = int(rng.integers(0, 256))
            try:
                state: Any = state_from_bytes(pack(kind, bytes(mutated)))
            except ValueError:
                outcomes["refused"] += 1
                continue
            outcomes["read"] += 1  # a mutation that keeps the invariants (a count, a sum, a bin) is a valid state
            performance_metrics(state)
            assert state_from_bytes(state.to_bytes()).to_bytes() == state.to_bytes()
    assert outcomes["refused"] > 0 and outcomes["read"] > 0
