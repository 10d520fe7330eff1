"""The status page's numbers, read from PostgreSQL into a typed model.

Reads only what stays small however long the history: the hourly rollups of the last 90
days (``checks_hourly``, one grouped scan), the site states, the incidents that touch the
last 90 days, the maintenance windows not yet over, and the latest check per site (through
the ``(site_id, checked_at)`` index). Never the raw checks of a period.

Definitions (the tests recompute each one in plain SQL):

- Uptime over a window (24 h, 7 d, 30 d, 90 d): the share of passed checks in the rollups
  whose hour is at or after the hour holding ``now - window`` (as ``webchecker report``
  counts); ``None`` without checks.
- Days: the 90 UTC dates up to today, oldest first; a day's uptime from the rollups of its
  hours, its incident minutes the overlap of the site's incidents (an open one lasts until
  ``now``) with the day.
- Latency p50/p95: estimated from the merged histograms of the last 24 hours' rollups
  (``webchecker.histogram``), and per hour for the chart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any, NamedTuple

import orjson

from webchecker.histogram import percentiles
from webchecker.page.settings import PageSettings
from webchecker.store.database import Database, quote_identifier

logger = logging.getLogger(__name__)

DAYS = 90
WINDOWS: tuple[tuple[str, timedelta], ...] = (
    ("24h", timedelta(hours=24)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
    ("90d", timedelta(days=90)),
)
_FRACTIONS = (0.5, 0.95)
RECENT_INCIDENTS = 10  # per site, in status.json and on the page
PAGE_INCIDENTS = 20  # the page's list of recent incidents across sites
MAX_WINDOWS = 20  # maintenance windows listed


def public_url(url: str) -> str:
    """``url`` without its userinfo (``user:password@``): never shown, also when malformed."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url.rsplit("@", 1)[-1] if "@" in url.split("/", 1)[0] else url
    end = min((rest.find(c) for c in "/?#" if c in rest), default=len(rest))
    authority = rest[:end]
    if "@" in authority:
        authority = authority.rsplit("@", 1)[1]
    return f"{scheme}://{authority}{rest[end:]}"


def hour_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def uptime_of(checks: int, failures: int) -> float | None:
    """Percent of passed checks; ``None`` without checks."""
    return 100.0 * (checks - failures) / checks if checks else None


class DayStatus(NamedTuple):
    """One day of one site (a tuple: 90,000 of them for 1,000 sites are made per render)."""

    date: date
    checks: int
    failures: int
    incident_minutes: float
    uptime: float | None  # percent of passed checks (``uptime_of``), None without checks


class HourLatency(NamedTuple):
    hour: datetime
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True, kw_only=True)
class Incident:
    incident_id: str
    site_id: str
    opened_at: datetime
    resolved_at: datetime | None
    error: str | None
    error_detail: str | None
    status_code: int | None

    def duration(self, now: datetime) -> timedelta:
        return max((self.resolved_at or now) - self.opened_at, timedelta(0))


@dataclass(frozen=True, kw_only=True)
class MaintenanceWindow:
    window_id: str
    site_ids: tuple[str, ...] | None
    tags: tuple[str, ...] | None
    starts_at: datetime
    ends_at: datetime
    reason: str

    def covers(self, site_id: str, tags: Iterable[str]) -> bool:
        """Whether the window applies to this site (no ids and no tags: every site)."""
        if self.site_ids is None and self.tags is None:
            return True
        return site_id in (self.site_ids or ()) or not set(self.tags or ()).isdisjoint(tags)

    def current(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True, kw_only=True)
class SiteStatus:
    site_id: str
    url: str  # without userinfo
    tags: tuple[str, ...]
    state: str  # up, down, unknown or maintenance
    since: datetime | None
    uptime: Mapping[str, float | None]  # keyed by WINDOWS' names
    days: tuple[DayStatus, ...]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    hourly: tuple[HourLatency, ...]  # the last 24 hours with latencies, oldest first
    incidents: tuple[Incident, ...]  # recent ones, newest first
    certificate_expires_at: datetime | None
    last_checked_at: datetime | None
    flapping: bool = False  # the state machine saw it change too often lately


@dataclass(frozen=True, kw_only=True)
class StatusModel:
    title: str
    generated_at: datetime
    sites: tuple[SiteStatus, ...]
    incidents: tuple[Incident, ...]  # recent ones across the sites shown, newest first
    maintenance: tuple[MaintenanceWindow, ...]  # current and upcoming, soonest first

    def count(self, state: str) -> int:
        return sum(1 for site in self.sites if site.state == state)

    @property
    def overall(self) -> tuple[str, str]:
        """``(level, sentence)``: level is ``none``, ``up``, ``partial`` or ``major``."""
        total, down = len(self.sites), self.count("down")
        if total == 0:
            return "none", "No sites are monitored yet."
        maintenance = self.count("maintenance")
        note = f" {maintenance} in maintenance." if maintenance else ""
        if down == 0:
            return "up", f"All systems operational.{note}"
        sites = f"{down} of {total} sites {'is' if down == 1 else 'are'} down"
        if 2 * down >= total:
            return "major", f"Major outage: {sites}.{note}"
        return "partial", f"Partial outage: {sites}.{note}"


# -- loading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bounds:
    """The instants every query is relative to."""

    now: datetime
    window_starts: Mapping[str, datetime]  # hour holding now - window
    first_day: date  # the oldest of the DAYS dates

    @classmethod
    def at(cls, now: datetime) -> _Bounds:
        starts = {name: hour_start(now - length) for name, length in WINDOWS}
        return cls(now, starts, now.astimezone(UTC).date() - timedelta(days=DAYS - 1))

    @cached_property
    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(DAYS)]

    @cached_property
    def day_texts(self) -> list[str]:
        return [day.isoformat() for day in self.days]

    @cached_property
    def quiet_days(self) -> dict[date, DayStatus]:
        """A day without checks or incidents, one per date, shared by every site (most of
        the 90 days of a young site: 10,000 sites made 900,000 equal tuples per render)."""
        return {day: DayStatus(day, 0, 0, 0.0, None) for day in self.days}

    @cached_property
    def shared_days(self) -> dict[tuple[date, int, int], DayStatus]:
        """Days without incident minutes, by (date, checks, failures), shared by the sites
        that had the same counts that day (sites checked every minute without a failure
        all have (1440, 0)); filled while the sites are read."""
        return {}

    @cached_property
    def hours(self) -> dict[int, datetime]:
        """The hours of the latency chart by epoch second, shared by every site."""
        return {}


def load_status(
    database: Database, settings: PageSettings, *, now: datetime | None = None
) -> StatusModel:
    """Everything the page shows, read in one transaction."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    bounds = _Bounds.at(now)
    schema = quote_identifier(database.schema)
    with database.transaction() as connection:
        connection.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        # short aggregate queries: compiling them (JIT) costs more than it saves (~0.25 s)
        connection.run("SET LOCAL jit = off")
        # a site last checked before the 90 days is gone (removed): not on the page
        states = {
            row[0]: row
            for row in connection.run(
                f"SELECT site_id, state, since, url, tags, flapping FROM {schema}.site_state"
                " WHERE last_checked_at IS NULL OR last_checked_at >= :since",
                since=bounds.window_starts["90d"],
            )
        }
        wanted: list[str] | None = None
        if not settings.selects_all:
            wanted = sorted(
                {sid for sid, row in states.items() if settings.selects(sid, row[4] or ())}
                | settings.site_ids
            )
        starts = bounds.window_starts
        rollups = connection.run(
            "WITH d AS (SELECT site_id, CAST(hour AT TIME ZONE 'UTC' AS date) AS day,"
            " sum(checks) AS c, sum(failures) AS f,"
            " sum(checks) FILTER (WHERE hour >= :s24) AS c24,"
            " sum(failures) FILTER (WHERE hour >= :s24) AS f24,"
            " sum(checks) FILTER (WHERE hour >= :s7) AS c7,"
            " sum(failures) FILTER (WHERE hour >= :s7) AS f7,"
            " sum(checks) FILTER (WHERE hour >= :s30) AS c30,"
            " sum(failures) FILTER (WHERE hour >= :s30) AS f30"
            f" FROM {schema}.checks_hourly WHERE hour >= :s90 AND hour <= :now"
            " AND (CAST(:sites AS text[]) IS NULL OR site_id = ANY(CAST(:sites AS text[])))"
            " GROUP BY 1, 2)"
            " SELECT site_id, CAST(json_build_array("
            " sum(c24), sum(f24), sum(c7), sum(f7), sum(c30), sum(f30), sum(c), sum(f)) AS text),"
            " CAST(json_agg(json_build_array(day, c, f)) FILTER (WHERE day >= :first) AS text)"
            " FROM d GROUP BY site_id",
            s24=starts["24h"],
            s7=starts["7d"],
            s30=starts["30d"],
            s90=starts["90d"],
            now=now,
            first=bounds.first_day,
            sites=wanted,
        )
        latencies = connection.run(
            "SELECT site_id, CAST(json_agg(json_build_array(CAST(extract(epoch FROM hour)"
            " AS bigint), latency_min_ms, latency_max_ms, latency_histogram) ORDER BY hour)"
            f" AS text) FROM {schema}.checks_hourly"
            " WHERE hour >= :s24 AND hour <= :now AND latency_count > 0"
            " AND (CAST(:sites AS text[]) IS NULL OR site_id = ANY(CAST(:sites AS text[])))"
            " GROUP BY site_id",
            s24=starts["24h"],
            now=now,
            sites=wanted,
        )
        site_ids = sorted(
            {row[0] for row in rollups} | {sid for sid in states if wanted is None or sid in wanted}
        )
        latest = connection.run(
            "SELECT s.site_id, c.url, c.ok, c.checked_at, c.tls_cert_expires_at"
            " FROM unnest(CAST(:sites AS text[])) AS s(site_id)"
            " LEFT JOIN LATERAL (SELECT url, ok, checked_at, tls_cert_expires_at"
            f"   FROM {schema}.checks WHERE site_id = s.site_id"
            "   AND checked_at >= :since AND checked_at <= :now"
            "   ORDER BY checked_at DESC LIMIT 1) c ON true",
            sites=site_ids,
            since=starts["90d"],
            now=now,
        )
        incidents = connection.run(
            "SELECT CAST(incident_id AS text), site_id, opened_at, resolved_at, error,"
            f" error_detail, status_code FROM {schema}.incidents"
            " WHERE site_id = ANY(CAST(:sites AS text[])) AND opened_at <= :now"
            " AND (resolved_at IS NULL OR resolved_at >= :first)"
            " ORDER BY opened_at DESC, incident_id",
            sites=site_ids,
            now=now,
            first=day_start(bounds.first_day),
        )
        windows = connection.run(
            "SELECT CAST(window_id AS text), site_ids, tags, starts_at, ends_at, reason"
            f" FROM {schema}.maintenance_windows WHERE ends_at > :now"
            " ORDER BY starts_at, window_id LIMIT :limit",
            now=now,
            limit=MAX_WINDOWS * 5,
        )
    maintenance = [
        MaintenanceWindow(
            window_id=row[0],
            site_ids=tuple(row[1]) if row[1] is not None else None,
            tags=tuple(row[2]) if row[2] is not None else None,
            starts_at=row[3],
            ends_at=row[4],
            reason=row[5],
        )
        for row in windows
    ]
    by_site: dict[str, list[Incident]] = {sid: [] for sid in site_ids}
    for row in incidents:
        incident = Incident(
            incident_id=row[0],
            site_id=row[1],
            opened_at=row[2],
            resolved_at=row[3],
            error=row[4],
            error_detail=row[5],
            status_code=row[6],
        )
        by_site[incident.site_id].append(incident)
    # JSON text per site, parsed site by site (popped): 10,000 sites' parsed days and hours
    # at once were the render's peak memory
    totals = {row[0]: (row[1], row[2]) for row in rollups}
    hourly = {row[0]: row[1] for row in latencies}
    del rollups, latencies
    last = {row[0]: row[1:] for row in latest}
    sites = [
        _site(
            site_id,
            state_row=states.get(site_id),
            totals=totals.pop(site_id, None),
            hourly=hourly.pop(site_id, None),
            latest=last.get(site_id, (None,) * 4),
            incidents=by_site[site_id],
            windows=maintenance,
            bounds=bounds,
        )
        for site_id in site_ids
    ]
    shown = {site.site_id for site in sites}
    recent = sorted(
        (i for site in sites for i in site.incidents),
        key=lambda i: (i.opened_at, i.incident_id),
        reverse=True,
    )
    return StatusModel(
        title=settings.title,
        generated_at=now,
        sites=tuple(sites),
        incidents=tuple(recent[:PAGE_INCIDENTS]),
        maintenance=tuple(
            window
            for window in maintenance
            if any(window.covers(site.site_id, site.tags) for site in sites) or not shown
        )[:MAX_WINDOWS],
    )


def _site(
    site_id: str,
    *,
    state_row: Sequence[Any] | None,
    totals: tuple[str, str | None] | None,  # JSON texts: the sums, the days
    hourly: str | None,  # JSON text: the hours with latencies
    latest: Sequence[Any],
    incidents: list[Incident],
    windows: Sequence[MaintenanceWindow],
    bounds: _Bounds,
) -> SiteStatus:
    latest_url, latest_ok, checked_at, cert = latest
    tags: tuple[str, ...] = tuple(state_row[4] or ()) if state_row else ()
    url = state_row[3] if state_row else latest_url
    if state_row is not None:
        state, since = state_row[1], state_row[2]
    else:  # no state machine row yet: the latest check is all we know
        state = "unknown" if latest_ok is None else ("up" if latest_ok else "down")
        since = None
    covering = [w for w in windows if w.current(bounds.now) and w.covers(site_id, tags)]
    if covering:
        state, since = "maintenance", min(w.starts_at for w in covering)
    sums, day_rows = (
        (orjson.loads(totals[0]), orjson.loads(totals[1] or "[]"))
        if totals is not None
        else ([0] * 8, [])
    )
    counts = [int(value or 0) for value in sums]
    uptime = {
        name: uptime_of(counts[2 * i], counts[2 * i + 1]) for i, (name, _) in enumerate(WINDOWS)
    }
    per_day = {day: (int(c), int(f)) for day, c, f in day_rows}  # keyed by ISO date text
    minutes = incident_minutes(incidents, bounds.days, now=bounds.now)
    nothing = (0, 0)
    days = []
    shared = bounds.shared_days
    for day, text in zip(bounds.days, bounds.day_texts, strict=True):
        checks, failures = per_day.get(text, nothing)
        spent = minutes[day]
        if not checks and not spent:
            days.append(bounds.quiet_days[day])
        elif not spent:
            key = (day, checks, failures)
            status = shared.get(key)
            if status is None:
                share = uptime_of(checks, failures)
                status = shared[key] = DayStatus(day, checks, failures, spent, share)
            days.append(status)
        else:
            days.append(DayStatus(day, checks, failures, spent, uptime_of(checks, failures)))
    # (orjson gave ints and floats already)
    moments = bounds.hours
    hours = []
    for epoch, fastest, slowest, histogram in orjson.loads(hourly) if hourly else ():
        moment = moments.get(epoch)
        if moment is None:
            moment = moments[epoch] = datetime.fromtimestamp(epoch, UTC)
        hours.append((moment, fastest, slowest, histogram))
    p50, p95 = _percentiles([h[3] for h in hours], [h[1] for h in hours], [h[2] for h in hours])
    return SiteStatus(
        site_id=site_id,
        url=public_url(url or ""),
        tags=tags,
        state=state,
        since=since,
        uptime=uptime,
        days=tuple(days),
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        hourly=tuple(_hour_latency(hour, h, lo, hi) for hour, lo, hi, h in hours),
        incidents=tuple(incidents[:RECENT_INCIDENTS]),
        certificate_expires_at=cert,
        last_checked_at=checked_at,
        flapping=bool(state_row[5]) if state_row is not None else False,
    )


def _hour_latency(
    hour: datetime, histogram: list[int], fastest: float, slowest: float
) -> HourLatency:
    p50, p95 = percentiles(histogram, _FRACTIONS, minimum=fastest, maximum=slowest)
    return HourLatency(hour, p50, p95)


def _percentiles(
    histograms: Sequence[Sequence[int]], minima: Sequence[float], maxima: Sequence[float]
) -> tuple[float | None, float | None]:
    if not histograms:
        return None, None
    merged = [sum(column) for column in zip(*histograms, strict=True)]  # histogram.merge, faster
    low, high = min(minima), max(maxima)
    p50, p95 = percentiles(merged, _FRACTIONS, minimum=low, maximum=high)
    return p50, p95


def incident_minutes(
    incidents: Iterable[Incident], days: Sequence[date], *, now: datetime
) -> dict[date, float]:
    """Minutes of each day covered by an incident (an open one lasts until ``now``)."""
    minutes = dict.fromkeys(days, 0.0)
    if not days:
        return minutes
    first, end = day_start(days[0]), day_start(days[-1]) + timedelta(days=1)
    for incident in incidents:
        start = max(incident.opened_at.astimezone(UTC), first)
        stop = min((incident.resolved_at or now).astimezone(UTC), now, end)
        while start < stop:
            next_day = day_start(start.date()) + timedelta(days=1)
            piece = min(next_day, stop) - start
            minutes[start.date()] += piece.total_seconds() / 60.0
            start = next_day
    return minutes
