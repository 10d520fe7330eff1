"""Fixed-bucket latency histograms and the percentile estimate the report uses."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webchecker.histogram import (
    BOUNDS_MS,
    BUCKETS,
    bucket_of,
    histogram_of,
    merge,
    percentile,
    percentiles,
)

latencies = st.lists(
    st.floats(min_value=0, max_value=120_000, allow_nan=False), min_size=1, max_size=300
)


@pytest.mark.parametrize(
    ("latency", "bucket"),
    [(0.0, 0), (4.99, 0), (5.0, 1), (9.99, 1), (10.0, 2), (59_999.0, BUCKETS - 2),
     (60_000.0, BUCKETS - 1), (1e9, BUCKETS - 1)],
)  # fmt: skip
def test_bucket_boundaries_match_width_bucket(latency: float, bucket: int) -> None:
    # PostgreSQL's width_bucket(x, bounds): bounds are lower bounds, below the first is 0
    assert bucket_of(latency) == bucket


@given(latencies, st.sampled_from([0.5, 0.95, 0.99]))
def test_the_estimate_lies_in_the_bucket_of_the_exact_percentile(
    values: list[float], fraction: float
) -> None:
    ordered = sorted(values)
    exact = ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
    bucket = bucket_of(exact)
    low = BOUNDS_MS[bucket - 1] if bucket else 0.0
    high = BOUNDS_MS[bucket] if bucket < len(BOUNDS_MS) else ordered[-1]

    estimate = percentile(histogram_of(values), fraction, minimum=ordered[0], maximum=ordered[-1])

    assert estimate is not None
    assert ordered[0] <= estimate <= ordered[-1]
    assert low <= estimate <= high


@given(latencies, latencies)
def test_merged_histograms_equal_the_histogram_of_all_values(
    first: list[float], second: list[float]
) -> None:
    assert merge([histogram_of(first), histogram_of(second)]) == histogram_of(first + second)


@given(latencies)
def test_percentiles_do_not_decrease_with_the_fraction(values: list[float]) -> None:
    histogram = histogram_of(values)
    estimates = [
        percentile(histogram, f, minimum=min(values), maximum=max(values))
        for f in (0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)
    ]
    assert estimates == sorted(estimates)  # type: ignore[type-var]


def test_one_sample_gives_itself_back_and_no_samples_give_none() -> None:
    assert percentile(histogram_of([123.0]), 0.99, minimum=123.0, maximum=123.0) == 123.0
    assert percentile([0] * BUCKETS, 0.5, minimum=0.0, maximum=0.0) is None
    with pytest.raises(ValueError):
        percentile([1] * BUCKETS, 1.5, minimum=0.0, maximum=1.0)


@given(
    st.lists(st.integers(0, 50), min_size=BUCKETS, max_size=BUCKETS),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5),
    st.floats(0.0, 100.0),
    st.floats(0.0, 70_000.0),
)
def test_percentiles_in_one_pass_equal_one_percentile_at_a_time(
    histogram: list[int], fractions: list[float], minimum: float, spread: float
) -> None:
    maximum = minimum + spread
    expected = [
        percentile(histogram, fraction, minimum=minimum, maximum=maximum) for fraction in fractions
    ]
    assert percentiles(histogram, fractions, minimum=minimum, maximum=maximum) == expected
