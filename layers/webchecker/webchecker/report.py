"""Availability and latency per site, from the hourly rollups and the rows at the edge.

The window is exact: the whole hours from the first full hour after ``since`` come from
``checks_hourly`` (so a year is as quick to report as a day), the part of an hour before it
from ``checks`` (through its (site_id, checked_at) index). Percentiles are estimates: the
merged fixed-bucket histograms (``webchecker.histogram``) say which bucket holds each, and
the value is interpolated inside it; the report gives that bucket with each estimate. The
last check and the last failure come from ``checks``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from webchecker.histogram import BOUNDS_MS, BUCKETS, describe_bounds, percentile, percentile_bucket
from webchecker.results import format_optional_timestamp
from webchecker.store.database import Database, quote_identifier

_DURATION = re.compile(r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``24h``, ``30m``, ``7d``, ``2w``, ``90s`` before ``now``, or an RFC 3339 timestamp."""
    now = now or datetime.now(UTC)
    match = _DURATION.fullmatch(text.strip().lower())
    if match:
        seconds = float(match["amount"]) * _UNITS[match["unit"]]
        try:
            return now - timedelta(seconds=seconds)
        except OverflowError:  # 99999999999d: before year 1
            raise ValueError(f"{text[:40]!r}: further back than the calendar goes") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r}: expected a duration like 24h, 30m, 7d, 2w or an RFC 3339 timestamp"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"{text[:40]!r}: out of range in UTC") from None


@dataclass(frozen=True, kw_only=True)
class SiteReport:
    """One site's line of the report."""

    site_id: str
    checks: int
    failures: int
    availability: float | None  # percent of checks that passed
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    last_checked_at: datetime | None
    last_status_code: int | None
    last_error: str | None  # the latest failure within the window
    last_error_at: datetime | None
    last_error_detail: str | None
    #: The histogram bucket (low, high) ms holding each percentile: its resolution.
    p50_bucket_ms: tuple[float, float] | None = None
    p95_bucket_ms: tuple[float, float] | None = None
    p99_bucket_ms: tuple[float, float] | None = None
    #: The site's state (store/incidents.py): up, down or unknown, and since when.
    state: str | None = None
    state_since: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "checks": self.checks,
            "failures": self.failures,
            "availability": _round(self.availability, 3),
            "p50_ms": _round(self.p50_ms, 1),
            "p95_ms": _round(self.p95_ms, 1),
            "p99_ms": _round(self.p99_ms, 1),
            "p50_bucket_ms": _bucket(self.p50_bucket_ms),
            "p95_bucket_ms": _bucket(self.p95_bucket_ms),
            "p99_bucket_ms": _bucket(self.p99_bucket_ms),
            "last_checked_at": format_optional_timestamp(self.last_checked_at),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "last_error_at": format_optional_timestamp(self.last_error_at),
            "last_error_detail": self.last_error_detail,
            "state": self.state,
            "state_since": format_optional_timestamp(self.state_since),
        }


def build_report(
    database: Database, *, since: datetime, site_id: str | None = None
) -> list[SiteReport]:
    """Every site with checks since ``since`` (or just ``site_id``), sorted by id."""
    schema = quote_identifier(database.schema)
    since = since.astimezone(UTC)
    edge = _next_hour(since)  # rollups from here on; rows of [since, edge) one by one
    site_filter = "(CAST(:site AS text) IS NULL OR site_id = CAST(:site AS text))"
    rows_window = f"checked_at >= :since AND checked_at < :edge AND {site_filter}"
    bounds = "CAST(:bounds AS double precision[])"
    with database.transaction() as connection:
        totals = connection.run(
            "SELECT site_id, sum(checks), sum(failures), min(latency_min_ms), max(latency_max_ms)"
            f" FROM {schema}.checks_hourly WHERE hour >= :edge AND {site_filter}"
            " GROUP BY site_id"
            " UNION ALL"
            " SELECT site_id, count(*), count(*) FILTER (WHERE NOT ok), min(response_time_ms),"
            f" max(response_time_ms) FROM {schema}.checks WHERE {rows_window} GROUP BY site_id",
            edge=edge,
            since=since,
            site=site_id,
        )
        buckets = connection.run(
            "SELECT site_id, u.i - 1, sum(u.n)"
            f" FROM {schema}.checks_hourly,"
            " unnest(latency_histogram) WITH ORDINALITY AS u(n, i)"
            f" WHERE hour >= :edge AND {site_filter} GROUP BY site_id, u.i"
            " UNION ALL"
            f" SELECT site_id, width_bucket(response_time_ms, {bounds}), count(*)"
            f" FROM {schema}.checks WHERE {rows_window} AND response_time_ms IS NOT NULL"
            " GROUP BY 1, 2",
            edge=edge,
            since=since,
            site=site_id,
            bounds=list(BOUNDS_MS),
        )
        sites = sorted({row[0] for row in totals})
        latest = connection.run(
            "SELECT s.site_id, c.checked_at, c.status_code, f.error, f.checked_at,"
            " f.error_detail, st.state, st.since"
            " FROM unnest(CAST(:sites AS text[])) AS s(site_id)"
            f" LEFT JOIN {schema}.site_state st ON st.site_id = s.site_id"
            " LEFT JOIN LATERAL (SELECT checked_at, status_code"
            f"   FROM {schema}.checks WHERE site_id = s.site_id"
            "   ORDER BY checked_at DESC LIMIT 1) c ON true"
            " LEFT JOIN LATERAL (SELECT checked_at, error, error_detail"
            f"   FROM {schema}.checks WHERE site_id = s.site_id AND NOT ok"
            "   AND checked_at >= :since ORDER BY checked_at DESC LIMIT 1) f ON true",
            sites=sites,
            since=since,
        )
    histograms: dict[str, list[int]] = defaultdict(lambda: [0] * BUCKETS)
    for site, index, count in buckets:
        histograms[site][int(index)] += int(count)
    summed: dict[str, list[Any]] = {}
    for site, checks, failures, fastest, slowest in totals:
        entry = summed.setdefault(site, [0, 0, None, None])
        entry[0] += int(checks)
        entry[1] += int(failures)
        entry[2] = _pick(min, entry[2], fastest)
        entry[3] = _pick(max, entry[3], slowest)
    last = {row[0]: row[1:] for row in latest}
    reports = []
    for site in sites:
        checks, failures, fastest, slowest = summed[site]
        checked_at, status_code, error, error_at, detail, state, since = last.get(site, (None,) * 7)
        p50, p95, p99 = (
            _estimate(histograms[site], fraction, fastest, slowest)
            for fraction in (0.5, 0.95, 0.99)
        )
        reports.append(
            SiteReport(
                site_id=site,
                checks=checks,
                failures=failures,
                availability=100.0 * (checks - failures) / checks if checks else None,
                p50_ms=p50[0],
                p95_ms=p95[0],
                p99_ms=p99[0],
                last_checked_at=checked_at,
                last_status_code=status_code,
                last_error=error,
                last_error_at=error_at,
                last_error_detail=detail,
                p50_bucket_ms=p50[1],
                p95_bucket_ms=p95[1],
                p99_bucket_ms=p99[1],
                state=state,
                state_since=since,
            )
        )
    return reports


def _next_hour(moment: datetime) -> datetime:
    """``moment`` if it is a whole hour, else the next whole hour."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if hour == moment else hour + timedelta(hours=1)


def _pick(choose: Any, current: float | None, new: float | None) -> float | None:
    values = [value for value in (current, new) if value is not None]
    return float(choose(values)) if values else None


def _estimate(
    histogram: Sequence[int], fraction: float, fastest: float | None, slowest: float | None
) -> tuple[float | None, tuple[float, float] | None]:
    """The estimated percentile and the bucket it lies in (its resolution)."""
    if fastest is None or slowest is None:  # no check of the site had a response time
        return None, None
    return (
        percentile(histogram, fraction, minimum=fastest, maximum=slowest),
        percentile_bucket(histogram, fraction, minimum=fastest, maximum=slowest),
    )


_HEADERS = ("SITE", "CHECKS", "AVAIL %", "P50 ms", "P95 ms", "P99 ms", "LAST CHECK (UTC)",
            "STATUS", "STATE", "LAST ERROR")  # fmt: skip


def format_table(reports: Sequence[SiteReport]) -> str:
    """A fixed-width table for a terminal (numbers right-aligned)."""
    if not reports:
        return "no checks in this period"
    rows = [_HEADERS] + [
        (
            report.site_id,
            str(report.checks),
            _fixed(report.availability, 2),
            _fixed(report.p50_ms, 0),
            _fixed(report.p95_ms, 0),
            _fixed(report.p99_ms, 0),
            _short_time(report.last_checked_at),
            "-" if report.last_status_code is None else str(report.last_status_code),
            _state(report),
            _last_error(report),
        )
        for report in reports
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    numeric = {1, 2, 3, 4, 5}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if index in numeric else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join([*lines, "", ESTIMATES_NOTE])


#: Printed under the table: what the percentile columns are (``--json`` gives each bucket).
ESTIMATES_NOTE = (
    "P50/P95/P99 are estimates, interpolated inside latency buckets with upper bounds "
    f"{describe_bounds()}: the true value lies in the same bucket (--json: p50_bucket_ms...)."
)


def _state(report: SiteReport) -> str:
    if report.state is None:
        return "-"
    if report.state_since is None:
        return report.state
    return f"{report.state} since {_short_time(report.state_since)}"


def _last_error(report: SiteReport) -> str:
    if report.last_error is None:
        return "-"
    text = f"{report.last_error} at {_short_time(report.last_error_at)}"
    if report.last_error_detail:
        detail = report.last_error_detail
        text += f": {detail if len(detail) <= 60 else detail[:57] + '...'}"
    return text


def _fixed(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _short_time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _bucket(bucket: tuple[float, float] | None) -> list[float] | None:
    return None if bucket is None else [bucket[0], bucket[1]]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
