"""The SDK's own faults: logged once per place, counted, never raised into the caller.

Counters live in plain dicts updated under the GIL; the meter reads them through observable counters at
export time, so counting costs nothing on the predict path.
"""

from __future__ import annotations

import logging
from collections import Counter

__all__ = ["STATS", "SelfStats", "count_coerced", "count_dropped", "fault"]

logger = logging.getLogger("instrument")


class SelfStats:
    def __init__(self) -> None:
        self.dropped: Counter[str] = Counter()  # telemetry dropped, by reason (values: calls or rows)
        self.errors: Counter[str] = Counter()  # faults in SDK code, by where
        self.coerced: Counter[str] = Counter()  # values changed to fit OTLP, by reason
        self._logged: set[str] = set()

    def reset(self) -> None:
        self.dropped.clear()
        self.errors.clear()
        self.coerced.clear()
        self._logged.clear()


STATS = SelfStats()


def fault(where: str, exc: BaseException | None = None) -> None:
    """Count a fault in SDK code; log it with its traceback the first time it happens at `where`."""
    try:
        STATS.errors[where] += 1
        if where not in STATS._logged:
            STATS._logged.add(where)
            logger.warning(
                "predwatch: internal error in %s; the prediction is unaffected. Further errors here are only counted "
                "(metric predwatch.sdk.errors).",
                where,
                exc_info=exc,
            )
    except Exception:  # pragma: no cover - logging itself failed; nothing left to do safely
        pass


def count_dropped(reason: str, n: int = 1, message: str | None = None) -> None:
    STATS.dropped[reason] += n
    key = "dropped:" + reason
    if message and key not in STATS._logged:
        STATS._logged.add(key)
        logger.warning("predwatch: %s (further occurrences are counted in predwatch.sdk.dropped)", message)


def count_coerced(reason: str, n: int = 1) -> None:
    STATS.coerced[reason] += n
