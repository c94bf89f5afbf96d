"""The per-process rate limit on what the SDK records: traces and payloads of at most `rate` calls a second.

Metrics count every call, so throughput, latency and errors stay exact whatever the limit. Spans and payloads
are what costs the serving process (a traced, recorded FastAPI request costs several times an untraced one)
and the collector (every recorded prediction is a row waiting for its label): above the limit the SDK records
an even sample of `rate` calls a second and counts the rest only in metrics. Below it nothing changes.

A token bucket: tokens accrue continuously at `rate` a second up to `burst` (one second's worth), and a call
is admitted when it can take one. With a steady load above the rate the admitted calls are spread evenly over
time, not bunched at the start of each second. No lock: two threads admitting at the same instant may let one
extra call through, which a limit that protects throughput can afford; the time read is a monotonic clock.
"""

from __future__ import annotations

from time import monotonic

__all__ = ["RateLimit"]


class RateLimit:
    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, clock: float | None = None) -> None:
        if not rate > 0:
            raise ValueError(f"a rate limit must be a positive number of calls per second, got {rate!r}")
        self.rate = float(rate)
        self.burst = max(1.0, self.rate)
        self.tokens = self.burst
        self.last = monotonic() if clock is None else clock

    def admit(self, now: float | None = None) -> bool:
        """Take a token if there is one. `now`: a monotonic time in seconds (tests); the clock's by default."""
        if now is None:
            now = monotonic()
        tokens = self.tokens + (now - self.last) * self.rate
        self.last = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = (tokens if tokens < self.burst else self.burst) - 1.0
        return True

    def __repr__(self) -> str:
        return f"RateLimit({self.rate:g}/s)"
