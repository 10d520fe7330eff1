"""Status page rendering: 1,000 sites with 90 days of hourly rollups, against a baseline.

Seeds (with SQL, in seconds) 1,000 sites x 90 days x 24 hourly rollups with histograms
(2.16 million rows), a site state and the latest check per site, and a few hundred
incidents, then times in the same run, on the same data:
- page: ``load_status`` + ``render_files`` (index.html, status.json, 1,000 badges): what the
  statuspage function does every few minutes, minus the upload;
- baseline: ``webchecker report --since 90d`` for every site (``report.build_report``): one
  window's availability and percentiles from the same rollups, the existing way to get
  numbers out of the database.

Goal: page < 2 s. Uses DATABASE_URL if set, else an embedded PostgreSQL in a temporary
directory.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from scratch_database import scratch_database
from webchecker.page.model import load_status
from webchecker.page.settings import PageSettings
from webchecker.page.statuspage import render_files
from webchecker.report import build_report
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import migrate

SITES = 1000
DAYS = 90
REPEATS = 5
GOAL_S = 2.0


def seed(database: Database, now: datetime) -> None:
    """Rollups for every site and hour, a state and latest check per site, some incidents."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    for first in range(1, SITES + 1, 100):  # in slices: short transactions
        with database.transaction() as connection:
            connection.run(
                "INSERT INTO webchecker.checks_hourly (site_id, hour, checks, failures,"
                " latency_count, latency_sum_ms, latency_min_ms, latency_max_ms, latency_histogram)"
                " SELECT 'site-' || lpad(s::text, 4, '0'), h, 60, (CASE WHEN random() < 0.02"
                "  THEN 1 + floor(random() * 10) ELSE 0 END)::int, 60, 60 * 120.0, 12.0, 2400.0,"
                "  CAST('{0,1,2,3,6,8,10,9,7,5,3,2,1,1,1,1,0,0,0,0,0,0,0,0,0}' AS int[])"
                " FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS s,"
                "  generate_series(CAST(:start AS timestamptz), CAST(:now AS timestamptz),"
                "   interval '1 hour') AS h",
                first=first,
                last=min(first + 99, SITES),
                start=start,
                now=now,
            )
    with database.transaction() as connection:
        connection.run(
            "INSERT INTO webchecker.site_state (site_id, state, since, url, tags)"
            " SELECT 'site-' || lpad(s::text, 4, '0'), CASE WHEN s % 97 = 0 THEN 'down'"
            "  ELSE 'up' END, CAST(:now AS timestamptz) - interval '3 days',"
            "  'https://site-' || s || '.example.com/', ARRAY['team-' || (s % 8)]"
            " FROM generate_series(1, :sites) AS s",
            sites=SITES,
            now=now,
        )
        connection.run(
            "INSERT INTO webchecker.checks (check_id, schema, site_id, url, scheduled_at,"
            " checked_at, response_time_ms, status_code, ok, tls_cert_expires_at)"
            " SELECT gen_random_uuid(), 1, 'site-' || lpad(s::text, 4, '0'), 'https://x/',"
            "  CAST(:now AS timestamptz) - interval '1 minute',"
            "  CAST(:now AS timestamptz) - interval '1 minute', 120, 200, true,"
            "  CAST(:now AS timestamptz) + interval '60 days'"
            " FROM generate_series(1, :sites) AS s",
            sites=SITES,
            now=now,
        )
        connection.run(
            "INSERT INTO webchecker.incidents (incident_id, site_id, url, opened_at,"
            " resolved_at, error, error_detail, status_code)"
            " SELECT gen_random_uuid(), 'site-' || lpad((1 + (i * 37) % :sites)::text, 4, '0'),"
            "  'https://x/', CAST(:now AS timestamptz) - (i || ' hours')::interval,"
            "  CAST(:now AS timestamptz) - (i || ' hours')::interval + interval '25 minutes',"
            "  'status', 'expected 200-399, got 503', 503"
            " FROM generate_series(1, 400) AS i",
            sites=SITES,
            now=now,
        )
    # what autovacuum does to rows that are no longer updated (hint bits, visibility map)
    database.connection().run("VACUUM (ANALYZE) webchecker.checks_hourly")


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def cpu_timed(action: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and this process's CPU seconds (the Python side, without the server's work)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    return time.perf_counter() - started, time.process_time() - cpu, result


def run(url: str) -> int:
    database = Database(DatabaseSettings.from_url(url, timeout=900.0))  # seeding is long
    migrate(database)
    now = datetime.now(UTC)
    started = time.perf_counter()
    seed(database, now)
    rows = database.connection().run("SELECT count(*) FROM webchecker.checks_hourly")[0][0]
    print(f"seeded {rows:,} hourly rollups ({SITES:,} sites x {DAYS} days)"
          f" in {time.perf_counter() - started:.1f}s")  # fmt: skip
    settings = PageSettings()
    load_status(database, settings, now=now)  # warm: connection, plans, caches
    page, model_load, render, baseline, python = [], [], [], [], []
    size = 0
    for _ in range(REPEATS):
        load_s, load_cpu, model = cpu_timed(lambda: load_status(database, settings, now=now))
        render_s, render_cpu, files = cpu_timed(lambda: render_files(model))  # noqa: B023
        python.append(load_cpu + render_cpu)
        page.append(load_s + render_s)
        model_load.append(load_s)
        render.append(render_s)
        size = sum(len(content) for content, _ in files.values())
        html = len(files["index.html"][0])
        report_s, reports = timed(lambda: build_report(database, since=now - timedelta(days=DAYS)))
        assert len(reports) == SITES
        baseline.append(report_s)
    median = statistics.median
    print(f"{'':>22}  {'median s':>9}")
    print(f"{'page (load + render)':>22}  {median(page):>9.3f}")
    print(f"{'  load_status':>22}  {median(model_load):>9.3f}")
    print(f"{'  render_files':>22}  {median(render):>9.3f}")
    print(f"{'  Python CPU of both':>22}  {median(python):>9.3f}")
    print(f"{'baseline: report 90d':>22}  {median(baseline):>9.3f}")
    ratio = median(page) / median(baseline)
    print(f"page / baseline: {ratio:.2f}x (the page also reads three more windows, 90 days,")
    print("  hourly latencies, incidents, states and the latest row per site, and renders)")
    print(f"files: {len(files):,}, {size / 1024:.0f} KiB in all; index.html {html / 1024:.0f} KiB")
    ok = median(page) < GOAL_S
    print(f"goal: page < {GOAL_S:g} s for {SITES:,} sites:", "met" if ok else "NOT met")
    print(
        f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    database.close()
    return 0


def main() -> int:
    with scratch_database("statuspage") as url:
        return run(url)


if __name__ == "__main__":
    sys.exit(main())
