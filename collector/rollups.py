"""Which stored rows cover a range of window starts: whole rollup buckets where they fit, raw windows at the edges.

Shared by the sketch windows (collector.store_sqlite) and the per-window states (collector.state_store_sqlite),
whose rollup buckets are aligned to the Unix epoch and hold the windows whose *start* lies in them.

    plan(lo, hi, (86400, 21600, 3600, 600))            # [(tier, a, b)]: rows of `tier` starting in [a, b)
    plan(lo, hi, tiers, step_s=3600)                   # the same, no bucket crossing a multiple of 3600
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["RAW", "cover", "plan"]

RAW = 0  # the tier of the windows as written


def cover(
    lo: int, hi: int, tiers: Sequence[int], buckets: list[tuple[int, int, int]], raw: list[tuple[int, int]]
) -> None:
    """Split the starts [lo, hi) into whole buckets of the widest tiers that fit, raw windows at the edges.
    `tiers` widest first."""
    if lo >= hi:
        return
    if not tiers:
        raw.append((lo, hi))
        return
    tier = tiers[0]
    a, b = -(-lo // tier) * tier, hi // tier * tier
    if a >= b:
        cover(lo, hi, tiers[1:], buckets, raw)
        return
    buckets.append((tier, a, b))
    cover(lo, a, tiers[1:], buckets, raw)
    cover(b, hi, tiers[1:], buckets, raw)


def plan(lo: int, hi: int, tiers: Sequence[int], step_s: int | None = None) -> list[tuple[int, int, int]]:
    """(tier, a, b) segments, RAW for raw windows, that hold every start in [lo, hi) exactly once. With `step_s`
    no bucket crosses a multiple of step_s, so each row falls in the step-wide bucket of its own start. Adjacent
    segments of one tier are joined: a series of 5,000 steps is still a few range scans."""
    bounds = [lo, hi] if step_s is None or lo >= hi else [lo, *range(lo // step_s * step_s + step_s, hi, step_s), hi]
    ranges = zip(bounds, bounds[1:], strict=False)  # [lo, first multiple), ..., [last multiple, hi)
    segments: list[tuple[int, int, int]] = []
    for a, b in ranges:
        raw: list[tuple[int, int]] = []
        cover(a, b, tiers, segments, raw)
        segments += [(RAW, x, y) for x, y in raw]
    joined: list[tuple[int, int, int]] = []
    for tier, a, b in sorted(segments):
        if joined and joined[-1][0] == tier and joined[-1][2] == a:
            joined[-1] = (tier, joined[-1][1], b)
        else:
            joined.append((tier, a, b))
    return joined
