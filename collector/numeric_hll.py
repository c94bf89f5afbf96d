"""A HyperLogLog for float64 arrays, updated with numpy in one pass instead of one C++ call per value.

datasketches' `hll_sketch.update` takes one value per call (~100 ns each through the binding), which would
triple the cost of sketching a numeric column; here a 512-value batch costs about 20 us. Registers are a
uint8 array of 2^lg_k slots: `merge` is an element-wise max (exact), `estimate` is Ertl's improved raw
estimator (2017), unbiased from 0 to 2^64 with relative standard error ~1.04 / sqrt(2^lg_k) (1.6% at lg_k 12).
Values are hashed by their float64 bits through MurmurHash3's fmix64 (-0.0 counts as 0.0); the caller
passes finite values only.
"""

from __future__ import annotations

import math
import struct

import numpy as np

__all__ = ["estimate", "from_bytes", "merge", "new", "to_bytes", "update"]

_M1 = np.uint64(0xFF51AFD7ED558CCD)  # MurmurHash3 fmix64 constants
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_S52 = np.uint64(52)
_PACKED_HEAD = struct.Struct("<BBH")  # tag 1, offset, exceptions


def new(lg_k: int) -> np.ndarray:
    return np.zeros(1 << lg_k, dtype=np.uint8)


def update(registers: np.ndarray, a: np.ndarray) -> None:
    """Add the float64 values `a` (finite) to `registers`, in place."""
    q = 64 - (int(registers.size).bit_length() - 1)
    f = a + 0.0  # a scratch copy; + 0.0 folds -0.0 into 0.0
    h = f.view(np.uint64)
    t = h >> _S33  # MurmurHash3's fmix64, in place: every input bit reaches every output bit
    h ^= t
    h *= _M1
    np.right_shift(h, _S33, out=t)
    h ^= t
    h *= _M2
    np.right_shift(h, _S33, out=t)
    h ^= t
    np.right_shift(h, np.uint64(q), out=t)  # the slot: < 2^lg_k, so its int64 view is the same number
    h &= np.uint64((1 << q) - 1)
    f[...] = h  # exact for q <= 53: the float's exponent is the bit length of the rest
    rank = np.uint64(q + 1023) - (f.view(np.uint64) >> _S52)  # q + 1 - bit_length (q + 1023 when rest == 0)
    np.minimum(rank, np.uint64(q + 1), out=rank)
    np.maximum.at(registers, t.view(np.intp), rank.astype(np.uint8))


def merge(registers: np.ndarray, other: np.ndarray) -> None:
    if registers.size != other.size:
        raise ValueError("cannot merge numeric HLLs of different lg_k")
    np.maximum(registers, other, out=registers)


def estimate(registers: np.ndarray) -> float:
    """Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017), improved raw estimator."""
    m = registers.size
    q = 64 - (m.bit_length() - 1)
    c = np.bincount(registers, minlength=q + 2).tolist()
    z = m * _tau(1.0 - c[q + 1] / m)
    for k in range(q, 0, -1):
        z = 0.5 * (z + c[k])
    z += m * _sigma(c[0] / m)
    return m * m / (2.0 * math.log(2.0) * z)


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        z_old, z = z, z + x * y
        y += y
        if z == z_old:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        y *= 0.5
        z_old, z = z, z - (1.0 - x) ** 2 * y
        if z == z_old:
            return z / 3.0


def to_bytes(registers: np.ndarray) -> bytes:
    """Sparse (slot, value) pairs while few slots are set, else 4-bit offsets from the minimum plus exceptions."""
    if 3 * np.count_nonzero(registers) < registers.size:  # tag 0: uint16 slot indices, then their uint8 values
        nonzero = np.flatnonzero(registers)
        return b"\x00" + nonzero.astype("<u2").tobytes() + registers[nonzero].tobytes()
    offset = int(registers.min())
    delta = registers - np.uint8(offset)
    exceptions = np.flatnonzero(delta >= 15)  # rare: values 15 or more above the minimum
    np.minimum(delta, 15, out=delta)
    packed = delta[0::2] | (delta[1::2] << 4)
    head = _PACKED_HEAD.pack(1, offset, exceptions.size)
    return head + packed.tobytes() + exceptions.astype("<u2").tobytes() + registers[exceptions].tobytes()


def from_bytes(data: bytes | memoryview, lg_k: int) -> np.ndarray:
    """Raises ValueError for bytes that are not registers of 2^lg_k slots."""
    m = 1 << lg_k
    if data[0] == 0:
        n = (len(data) - 1) // 3
        if 3 * n != len(data) - 1:
            raise ValueError("bad sparse numeric HLL")
        index = np.frombuffer(data, dtype="<u2", count=n, offset=1)
        registers = np.zeros(m, dtype=np.uint8)
        registers[index] = np.frombuffer(data, dtype=np.uint8, count=n, offset=1 + 2 * n)
    elif data[0] == 1:
        _, offset, n = _PACKED_HEAD.unpack_from(data)
        pos = _PACKED_HEAD.size
        if len(data) != pos + m // 2 + 3 * n:
            raise ValueError("bad packed numeric HLL")
        packed = np.frombuffer(data, dtype=np.uint8, count=m // 2, offset=pos)
        registers = np.empty(m, dtype=np.uint8)
        registers[0::2] = packed & 15
        registers[1::2] = packed >> 4
        registers += np.uint8(offset)
        pos += m // 2
        index = np.frombuffer(data, dtype="<u2", count=n, offset=pos)
        registers[index] = np.frombuffer(data, dtype=np.uint8, count=n, offset=pos + 2 * n)
    else:
        raise ValueError("bad numeric HLL tag")
    if int(registers.max(initial=0)) > 65 - lg_k:
        raise ValueError("bad numeric HLL registers")
    return registers
