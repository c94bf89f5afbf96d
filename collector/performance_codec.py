"""The envelope of a serialised performance state, and a bounds-checked reader for its body.

Layout v1: format byte (1), kind byte (1 classification, 2 regression), CRC-32 of the payload, payload = the
zlib-compressed body. Anything else raises ValueError, never another exception and never a half-read state.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

__all__ = ["KIND_CLASSIFICATION", "KIND_REGRESSION", "Reader", "kind_of", "pack", "unpack"]

FORMAT = 1
KIND_CLASSIFICATION = 1
KIND_REGRESSION = 2
_HEAD = struct.Struct("<BBI")  # format, kind, CRC-32 of the payload
_MAX_BODY = 1 << 30  # decompressed bytes; far above any state max_classes and score_bins allow


def pack(kind: int, body: bytes) -> bytes:
    payload = zlib.compress(body, 1)
    return _HEAD.pack(FORMAT, kind, zlib.crc32(payload)) + payload


def kind_of(data: bytes | memoryview) -> int:
    if len(data) < _HEAD.size:
        raise ValueError(f"{len(data)} bytes is too short for a performance state")
    fmt, kind, _ = _HEAD.unpack_from(data)
    if fmt != FORMAT:
        raise ValueError(f"unknown performance state format {fmt}")
    if kind not in (KIND_CLASSIFICATION, KIND_REGRESSION):
        raise ValueError(f"unknown performance state kind {kind}")
    return int(kind)


def unpack(kind: int, data: bytes | memoryview) -> Reader:
    """The body of a blob of `kind`, checked and decompressed."""
    if kind_of(data) != kind:
        raise ValueError(f"a state of kind {kind_of(data)} where kind {kind} was expected")
    _, _, crc = _HEAD.unpack_from(data)
    payload = memoryview(data)[_HEAD.size :]
    if zlib.crc32(payload) != crc:
        raise ValueError("checksum mismatch")
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(payload, _MAX_BODY)
    except zlib.error as exc:
        raise ValueError(f"undecodable payload: {exc}") from exc
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise ValueError("truncated, oversized or trailing payload")
    return Reader(body)


class Reader:
    """Reads a body front to back; every read checks the bounds and `done()` checks nothing is left over."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, layout: struct.Struct) -> tuple[Any, ...]:
        if self._pos + layout.size > len(self._data):
            raise ValueError("truncated body")
        values = layout.unpack_from(self._data, self._pos)
        self._pos += layout.size
        return values

    def raw(self, size: int) -> bytes:
        if size < 0 or self._pos + size > len(self._data):
            raise ValueError("truncated body")
        out = self._data[self._pos : self._pos + size]
        self._pos += size
        return out

    def array(self, dtype: str, count: int) -> np.ndarray[Any, Any]:
        """`count` little-endian values of `dtype` ("<u4", "<i8", ...), as a read-only view of the body."""
        return np.frombuffer(self.raw(count * np.dtype(dtype).itemsize), dtype=dtype)

    def done(self) -> None:
        if self._pos != len(self._data):
            raise ValueError(f"{len(self._data) - self._pos} trailing bytes")
