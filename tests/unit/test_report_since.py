"""Parsing ``webchecker report --since``; the percentiles' stated resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webchecker.histogram import BOUNDS_MS, histogram_of, percentile, percentile_bucket
from webchecker.report import ESTIMATES_NOTE, parse_since

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("30m", NOW - timedelta(minutes=30)),
        ("90s", NOW - timedelta(seconds=90)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("1.5h", NOW - timedelta(minutes=90)),
        (" 365D ", NOW - timedelta(days=365)),
        ("2026-11-01T00:00:00Z", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T02:00:00+02:00", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ],
)
def test_durations_and_timestamps(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "24", "h", "-1d", "3y"])
def test_anything_else_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="24h"):
        parse_since(text, now=NOW)


@given(
    st.lists(st.floats(min_value=0.1, max_value=100_000), min_size=1, max_size=200),
    st.floats(min_value=0, max_value=1),
)
def test_every_percentile_estimate_lies_in_the_bucket_reported_with_it(
    latencies: list[float], fraction: float
) -> None:
    histogram = histogram_of(latencies)
    extremes = {"minimum": min(latencies), "maximum": max(latencies)}
    estimate = percentile(histogram, fraction, **extremes)
    bucket = percentile_bucket(histogram, fraction, **extremes)
    assert estimate is not None
    assert bucket is not None
    assert bucket[0] <= estimate <= bucket[1]
    assert bucket[1] - bucket[0] <= max(BOUNDS_MS)  # a bucket, not the whole range


def test_the_report_note_names_every_bucket_bound() -> None:
    assert all(f"{bound:g}" in ESTIMATES_NOTE for bound in BOUNDS_MS)
    assert "estimates" in ESTIMATES_NOTE


def test_the_readme_lists_the_bucket_bounds() -> None:
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert ", ".join(f"{bound:g}" for bound in BOUNDS_MS) in readme
