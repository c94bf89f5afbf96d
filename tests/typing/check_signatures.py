"""Checked by mypy in tests/instrument/test_typing.py: @monitor keeps the wrapped signature."""

from __future__ import annotations

from typing import reveal_type

import numpy as np

import instrument


@instrument.monitor(model="m", version="1", task="regression")
def predict(x: np.ndarray, scale: float = 1.0) -> list[float]:
    return [scale] * len(x)


@instrument.monitor(model="m", version="1")
async def predict_async(rows: list[dict[str, float]]) -> int:
    return len(rows)


class Model:
    @instrument.monitor(model="m")
    def predict(self, x: list[float]) -> float:
        return sum(x)


ok: list[float] = predict(np.zeros((2, 2)), scale=2.0)
reveal_type(predict)
reveal_type(predict_async)
reveal_type(Model().predict)
wrong = predict("not an array", scale="big")  # two errors: both argument types
count: str = Model().predict([1.0])  # an error: the return type is float
