"""Fixed-bucket latency histograms: mergeable across hours, so percentiles can be estimated
over any range of hourly rollups (exact percentiles cannot be added up).

Bucket ``i`` counts latencies in ``[BOUNDS_MS[i-1], BOUNDS_MS[i])``: bucket 0 is below the
first bound, the last bucket is at or above the last one. This is what PostgreSQL's
``width_bucket(latency, BOUNDS_MS)`` returns, so the database fills the histograms and
Python reads them. Changing the bounds needs a migration that rewrites the rollups.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from itertools import accumulate

#: Upper bounds in milliseconds, roughly logarithmic from 5 ms to 60 s.
BOUNDS_MS: tuple[float, ...] = (
    5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 500, 750,
    1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 60000,
)  # fmt: skip
BUCKETS = len(BOUNDS_MS) + 1


def bucket_of(latency_ms: float) -> int:
    """The bucket index of one latency (the same as PostgreSQL's ``width_bucket``)."""
    return bisect.bisect_right(BOUNDS_MS, latency_ms)


def histogram_of(latencies_ms: Iterable[float]) -> list[int]:
    counts = [0] * BUCKETS
    for latency in latencies_ms:
        counts[bucket_of(latency)] += 1
    return counts


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    total = [0] * BUCKETS
    for histogram in histograms:
        for index, count in enumerate(histogram):
            total[index] += count
    return total


def percentile(
    histogram: Sequence[int], fraction: float, *, minimum: float, maximum: float
) -> float | None:
    """Estimated latency below which ``fraction`` of the samples fall (None when empty).

    Interpolates linearly inside the bucket; ``minimum`` and ``maximum`` (the exact extremes,
    kept next to the histogram) bound the open-ended first and last buckets and clamp the
    result, so a single sample gives its own value back.
    """
    return percentiles(histogram, (fraction,), minimum=minimum, maximum=maximum)[0]


def percentiles(
    histogram: Sequence[int], fractions: Sequence[float], *, minimum: float, maximum: float
) -> list[float | None]:
    """``percentile`` for several fractions from one running sum of the buckets (the status
    page estimates p50 and p95 for every hour of every site): each fraction's bucket is the
    first whose running count reaches its rank (bisected; for rank 0 the first non-empty one)."""
    for fraction in fractions:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be within 0..1, not {fraction}")
    cumulative = list(accumulate(histogram))
    total = cumulative[-1] if cumulative else 0
    if total == 0:
        return [None] * len(fractions)
    found: list[float | None] = []
    for fraction in fractions:
        rank = fraction * total
        index = (
            bisect.bisect_left(cumulative, rank) if rank > 0 else bisect.bisect_right(cumulative, 0)
        )
        if index >= len(cumulative):
            found.append(maximum)
            continue
        seen = cumulative[index - 1] if index > 0 else 0
        count = cumulative[index] - seen
        low = BOUNDS_MS[index - 1] if index > 0 else minimum
        high = BOUNDS_MS[index] if index < len(BOUNDS_MS) else maximum
        low, high = max(low, minimum), min(high, maximum)
        estimate = low + (high - low) * (rank - seen) / count
        found.append(min(max(estimate, minimum), maximum))
    return found


def percentile_bucket(
    histogram: Sequence[int], fraction: float, *, minimum: float, maximum: float
) -> tuple[float, float] | None:
    """The bounds of the bucket ``percentile`` interpolates in (clamped to the exact
    extremes): the estimate's resolution, e.g. ``(750, 1000)``. None when empty."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count == 0 or seen + count < rank:
            seen += count
            continue
        low = BOUNDS_MS[index - 1] if index > 0 else minimum
        high = BOUNDS_MS[index] if index < len(BOUNDS_MS) else maximum
        return max(low, minimum), min(high, maximum)
    return maximum, maximum


def describe_bounds() -> str:
    """The bucket bounds in words (for the database's column comment and the report)."""
    return ", ".join(f"{bound:g}" for bound in BOUNDS_MS) + " ms"
