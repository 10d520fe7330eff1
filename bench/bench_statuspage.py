"""Status page rendering: 1,000 sites with 90 days of hourly rollups, against a baseline.

Seeds (with SQL, in seconds) 1,000 sites x 90 days x 24 hourly rollups with histograms
(2.16 million rows), a site state and the latest check per site, and a few hundred
incidents, then times in the same run, on the same data:
- page: ``load_status`` + ``render_files`` (index.html, status.json, 1,000 badges): what the
  statuspage function does every few minutes, minus the upload;
- baseline: ``webchecker report --since 90d`` for every site (``report.build_report``): one
  window's availability and percentiles from the same rollups, the existing way to get
  numbers out of the database.

Then renders once more in a fresh process, as the function's container does (load, render
and publish into a temporary directory), and prints that process's peak RSS and CPU seconds
(user + system) next to an idle process's (imports and a connection only); ``--compare
DIR`` does the same with the ``webchecker`` package found in DIR (e.g. another worktree's
``layers/webchecker``), on the same data in the same run: before/after ratios.

``--sites N`` (default 1,000), ``--days N`` of history per site (default 90: young sites
share their quiet days) and ``--repeats N`` (default 5). Goal: page < 2 s for 1,000
sites. Uses DATABASE_URL if set, else an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scratch_database import scratch_database
from webchecker.page.model import load_status
from webchecker.page.settings import PageSettings
from webchecker.page.statuspage import render_files
from webchecker.report import build_report
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import migrate

DAYS = 90
GOAL_S = 2.0
GOAL_SITES = 1000


def seed(database: Database, now: datetime, sites: int, days: int = DAYS) -> None:
    """Rollups for every site and hour, a state and latest check per site, some incidents."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    for first in range(1, sites + 1, 100):  # in slices: short transactions
        with database.transaction() as connection:
            connection.run(
                "INSERT INTO webchecker.checks_hourly (site_id, hour, checks, failures,"
                " latency_count, latency_sum_ms, latency_min_ms, latency_max_ms, latency_histogram)"
                " SELECT 'site-' || lpad(s::text, 6, '0'), h, 60, (CASE WHEN random() < 0.02"
                "  THEN 1 + floor(random() * 10) ELSE 0 END)::int, 60, 60 * 120.0, 12.0, 2400.0,"
                "  CAST('{0,1,2,3,6,8,10,9,7,5,3,2,1,1,1,1,0,0,0,0,0,0,0,0,0}' AS int[])"
                " FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS s,"
                "  generate_series(CAST(:start AS timestamptz), CAST(:now AS timestamptz),"
                "   interval '1 hour') AS h",
                first=first,
                last=min(first + 99, sites),
                start=start,
                now=now,
            )
    with database.transaction() as connection:
        connection.run(
            "INSERT INTO webchecker.site_state (site_id, state, since, url, tags)"
            " SELECT 'site-' || lpad(s::text, 6, '0'), CASE WHEN s % 97 = 0 THEN 'down'"
            "  ELSE 'up' END, CAST(:now AS timestamptz) - interval '3 days',"
            "  'https://site-' || s || '.example.com/', ARRAY['team-' || (s % 8)]"
            " FROM generate_series(1, :sites) AS s",
            sites=sites,
            now=now,
        )
        connection.run(
            "INSERT INTO webchecker.checks (check_id, schema, site_id, url, scheduled_at,"
            " checked_at, response_time_ms, status_code, ok, tls_cert_expires_at)"
            " SELECT gen_random_uuid(), 1, 'site-' || lpad(s::text, 6, '0'), 'https://x/',"
            "  CAST(:now AS timestamptz) - interval '1 minute',"
            "  CAST(:now AS timestamptz) - interval '1 minute', 120, 200, true,"
            "  CAST(:now AS timestamptz) + interval '60 days'"
            " FROM generate_series(1, :sites) AS s",
            sites=sites,
            now=now,
        )
        connection.run(
            "INSERT INTO webchecker.incidents (incident_id, site_id, url, opened_at,"
            " resolved_at, error, error_detail, status_code)"
            " SELECT gen_random_uuid(), 'site-' || lpad((1 + (i * 37) % :sites)::text, 6, '0'),"
            "  'https://x/', CAST(:now AS timestamptz) - (i % 2100 || ' hours')::interval,"
            "  CAST(:now AS timestamptz) - (i % 2100 || ' hours')::interval"
            "   + interval '25 minutes',"
            "  'status', 'expected 200-399, got 503', 503"
            " FROM generate_series(1, CAST(:sites AS int) * 2 / 5) AS i",
            sites=sites,
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


def run(url: str, sites: int, days: int, repeats: int, compare: list[str]) -> int:
    database = Database(DatabaseSettings.from_url(url, timeout=900.0))  # seeding is long
    migrate(database)
    now = datetime.now(UTC)
    started = time.perf_counter()
    seed(database, now, sites, days)
    rows = database.connection().run("SELECT count(*) FROM webchecker.checks_hourly")[0][0]
    print(f"seeded {rows:,} hourly rollups ({sites:,} sites x {days} days)"
          f" in {time.perf_counter() - started:.1f}s")  # fmt: skip
    settings = PageSettings()
    load_status(database, settings, now=now)  # warm: connection, plans, caches
    page, model_load, render, baseline, python = [], [], [], [], []
    size = html = 0
    for _ in range(repeats):
        load_s, load_cpu, render_s, render_cpu, size, html = page_once(database, settings, now)
        python.append(load_cpu + render_cpu)
        page.append(load_s + render_s)
        model_load.append(load_s)
        render.append(render_s)
        report_s, reports = timed(lambda: build_report(database, since=now - timedelta(days=DAYS)))
        assert len(reports) == sites
        baseline.append(report_s)
    database.close()
    median = statistics.median
    print(f"{'':>22}  {'median s':>9}")
    print(f"{'page (load + render)':>22}  {median(page):>9.3f}")
    print(f"{'  load_status':>22}  {median(model_load):>9.3f}")
    print(f"{'  render_files':>22}  {median(render):>9.3f}")
    print(f"{'  Python CPU of both':>22}  {median(python):>9.3f}"
          f"  ({1000 * median(python) / sites:.3f} ms per site)")  # fmt: skip
    print(f"{'baseline: report 90d':>22}  {median(baseline):>9.3f}")
    ratio = median(page) / median(baseline)
    print(f"page / baseline: {ratio:.2f}x (the page also reads three more windows, 90 days,")
    print("  hourly latencies, incidents, states and the latest row per site, and renders)")
    print(f"files: {sites + 2:,}, {size / 1024:.0f} KiB in all; index.html {html / 1024:.0f} KiB")
    if sites == GOAL_SITES:
        ok = median(page) < GOAL_S
        print(f"goal: page < {GOAL_S:g} s for {sites:,} sites:", "met" if ok else "NOT met")
    print("one render in a fresh process (load, render, publish into a directory):")
    idle = in_child(url, now, None, render=False)
    print(f"  idle process (imports, connection): peak RSS {idle['rss_mib']:.0f} MiB")
    trees: list[str | None] = [None, *compare]
    measured = [in_child(url, now, tree) for tree in trees]
    for tree, result in zip(trees, measured, strict=True):
        name = "this tree" if tree is None else tree
        assert tree is None or str(result["package"]).startswith(tree), result["package"]
        print(
            f"  {name}: peak RSS {result['rss_mib']:.0f} MiB"
            f" ({result['rss_mib'] - idle['rss_mib']:.0f} above idle),"
            f" CPU {result['cpu_s']:.2f} s ({1000 * result['cpu_s'] / sites:.3f} ms per site),"
            f" {result['bytes'] / 1024:.0f} KiB written"
        )
    for tree, result in zip(compare, measured[1:], strict=True):
        same = "the same files" if result["digest"] == measured[0]["digest"] else "OTHER FILES"
        print(f"  this tree and {tree} wrote {same}")
        above = (measured[0]["rss_mib"] - idle["rss_mib"]) / (result["rss_mib"] - idle["rss_mib"])
        print(
            f"  this tree / {tree}: peak RSS above idle {above:.2f}x,"
            f" CPU {measured[0]['cpu_s'] / result['cpu_s']:.2f}x"
        )
    print(
        f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    return 0


def page_once(
    database: Database, settings: PageSettings, now: datetime
) -> tuple[float, float, float, float, int, int]:
    """Wall and CPU seconds of load_status and of render_files; bytes in all and of the page."""
    load_s, load_cpu, model = cpu_timed(lambda: load_status(database, settings, now=now))
    render_s, render_cpu, files = cpu_timed(lambda: render_files(model))
    size = sum(len(content) for content, _ in files.values())
    return load_s, load_cpu, render_s, render_cpu, size, len(files["index.html"][0])


def in_child(url: str, now: datetime, tree: str | None, *, render: bool = True) -> dict[str, Any]:
    """Peak RSS (MiB) and CPU seconds of a fresh process that renders once (or, without
    ``render``, only imports and connects), with the package of ``tree`` when given."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    arguments = [sys.executable, __file__, "--child", url, now.isoformat()]
    if not render:
        arguments.append("--idle")
    done = subprocess.run(arguments, env=env, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def child(url: str, now: datetime, render: bool) -> None:
    """The child's side of ``in_child``: prints its figures as one JSON line."""
    import webchecker
    from webchecker.page.publish import DirectoryPublisher
    from webchecker.page.statuspage import StatusPage

    database = Database(DatabaseSettings.from_url(url, timeout=900.0))
    database.connection().run("SELECT 1")
    written = 0
    with tempfile.TemporaryDirectory(prefix="bench-statuspage-") as directory:
        cpu = time.process_time()
        if render:
            publisher = DirectoryPublisher(Path(directory))
            page = StatusPage(PageSettings(), database, publisher, migrate=False)
            written = page.publish(now=now)["bytes"]
        cpu = time.process_time() - cpu
        # VmHWM, not ru_maxrss: that one keeps the forking parent's peak across exec
        status = Path("/proc/self/status").read_text()
        peak = int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1])
        digest = hashlib.sha256()  # of every file written: the trees must agree
        for path in sorted(Path(directory).rglob("*")):
            if path.is_file():
                digest.update(f"{path.relative_to(directory)}\0".encode())
                digest.update(path.read_bytes())
    database.close()
    package = str(Path(webchecker.__file__).parent)
    print(
        json.dumps(
            {
                "rss_mib": peak / 1024,
                "cpu_s": cpu,
                "bytes": written,
                "package": package,
                "digest": digest.hexdigest(),
            }
        )
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=GOAL_SITES)
    parser.add_argument("--days", type=int, default=DAYS, help="of history per site")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compare", action="append", default=[], metavar="DIR")
    parser.add_argument("--child", nargs=2, metavar=("URL", "NOW"), help=argparse.SUPPRESS)
    parser.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        child(options.child[0], datetime.fromisoformat(options.child[1]), not options.idle)
        return 0
    with scratch_database("statuspage") as url:
        return run(url, options.sites, options.days, options.repeats, options.compare)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
