"""REST API latency: the warm handler per request, with the database's own time beside it.

In one run, on one PostgreSQL (DATABASE_URL, else 127.0.0.1:5432 as user postgres):
- ``GET /v1/sites?limit=100`` with 1,000 sites in Parameter Store (moto, in-process; the
  container's listing cache warm, as between two requests of a busy container);
- ``GET /v1/sites/{id}/status`` (site_state, latest check, open incident, window);
- ``GET /v1/sites/{id}/checks?limit=100`` on a ``checks`` table of BENCH_API_ROWS rows
  (default 10,000,000: 1,000 sites x 10,000 minutes, about 3 minutes to generate here,
  once: the table is kept), and a deep page (its cursor 1,000 rows down).

Each request goes through ``Api.handle`` with a payload 2.0 event (what the Lambda handler
calls); p50/p99 over BENCH_API_REQUESTS warm requests (default 300). The baseline is the
database alone: the same query's server execution time (EXPLAIN ANALYZE) and its round
trip through pg8000; the plan is printed and must use the (site_id, checked_at) index, not
a sequential scan of ``checks``. Goal: handler p99 < 50 ms for each. The generated table
is kept (database ``wc_bench_api``) and reused by the next run with the same row count.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto import mock_aws

from webchecker.api.app import Api
from webchecker.api.queries import CHECK_SELECT
from webchecker.api.services import ApiSettings, Services
from webchecker.local.api_server import request_event
from webchecker.local.embedded.lambda_api import LocalContext
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import ensure_partitions, migrate

SITES = 1000
ROWS = int(os.environ.get("BENCH_API_ROWS", "10000000"))
REQUESTS = int(os.environ.get("BENCH_API_REQUESTS", "300"))
DATABASE = "wc_bench_api"
GOAL_P99_MS = 50.0
SITE = "site-0042"


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    head, _, _ = url.rpartition("/")
    return f"{head}/{DATABASE}"


def site_id(number: int) -> str:
    return f"site-{number:04d}"


def prepare_database(database: Database) -> float:
    """Migrates and fills ``checks`` with ROWS rows (kept between runs); seconds spent."""
    migrate(database)
    started = time.perf_counter()
    with database.transaction() as connection:
        have = connection.run("SELECT count(*) FROM webchecker.checks")[0][0]
    if have == ROWS:
        return 0.0
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = ROWS // SITES
    months = {(now - timedelta(minutes=m)).date() for m in range(0, minutes + 1, 60 * 24)}
    ensure_partitions(database, months)
    with database.transaction() as connection:
        connection.run("TRUNCATE webchecker.checks, webchecker.site_state, webchecker.incidents")
    chunk = 500_000
    for first in range(0, ROWS, chunk):
        last = min(ROWS, first + chunk) - 1
        with database.transaction() as connection:
            # check ids in ascending order (as uuids of the row number): the unique index is
            # appended to, not written at random, so 10M rows are feasible here
            connection.run(
                "INSERT INTO webchecker.checks (check_id, schema, site_id, url, region,"
                " scheduled_at, checked_at, response_time_ms, status_code, ok, error)"
                " SELECT lpad(to_hex(g), 32, '0')::uuid, 1,"
                " 'site-' || lpad((g % :sites)::text, 4, '0'),"
                " 'https://site-' || lpad((g % :sites)::text, 4, '0') || '.example/', 'eu-west-1',"
                " CAST(:now AS timestamptz) - (g / :sites) * interval '1 minute',"
                " CAST(:now AS timestamptz) - (g / :sites) * interval '1 minute'"
                "   + interval '1.5 second',"
                " 40 + (g % 97), CASE WHEN g % 53 = 0 THEN 503 ELSE 200 END, g % 53 <> 0,"
                " CASE WHEN g % 53 = 0 THEN 'status' END"
                " FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g",
                sites=SITES,
                now=now,
                first=first,
                last=last,
            )
        print(f"  generated {last + 1:,} / {ROWS:,} rows", flush=True)
    with database.transaction() as connection:
        connection.run(
            "INSERT INTO webchecker.site_state (site_id, state, since, url)"
            " SELECT 'site-' || lpad(g::text, 4, '0'), 'up', now() - interval '3 days',"
            " 'https://site-' || lpad(g::text, 4, '0') || '.example/'"
            " FROM generate_series(0, :n - 1) AS g",
            n=SITES,
        )
        connection.run(
            "INSERT INTO webchecker.incidents (incident_id, site_id, url, opened_at, error)"
            " VALUES (gen_random_uuid(), :site, 'https://x/', now() - interval '1 hour', 'status')",
            site=SITE,
        )
    database.connection().run("VACUUM ANALYZE webchecker.checks")
    return time.perf_counter() - started


def put_sites(ssm: Any) -> None:
    for number in range(SITES):
        ssm.put_parameter(
            Name=f"/webchecker/sites/{site_id(number)}",
            Value=f'{{"url": "https://{site_id(number)}.example/", "tags": ["bench"]}}',
            Type="String",
        )


def timed(handle: Callable[[dict[str, Any], Any], dict[str, Any]], target: str) -> list[float]:
    context = LocalContext(
        function_name="bench", aws_request_id="bench", memory_limit_in_mb=512,
        invoked_function_arn="arn:aws:lambda:eu-west-1:000000000000:function:bench",
        deadline=time.monotonic() + 3600,
    )  # fmt: skip
    event = request_event("GET", target, [("host", "bench")], b"")
    for _ in range(20):  # warm: the listing cache, the connection, Pydantic's validators
        assert handle(event, context)["statusCode"] == 200
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = handle(event, context)
        times.append((time.perf_counter() - started) * 1000)
        assert response["statusCode"] == 200, response
    return sorted(times)


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))]


def explain(database: Database, sql: str, **params: Any) -> tuple[list[str], float]:
    with database.transaction() as connection:
        rows = connection.run(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", **params)
    lines = [str(row[0]) for row in rows]
    execution = next(float(line.split()[2]) for line in lines if line.startswith("Execution Time"))
    return lines, execution


def round_trip(database: Database, sql: str, **params: Any) -> float:
    """Median of the statement sent as the API sends it (one statement, no BEGIN/COMMIT)."""
    connection = database.connection()
    times = []
    for _ in range(100):
        started = time.perf_counter()
        connection.run(sql, **params)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# the API's own statements (queries.py): the same columns, order and limit
CHECKS_SQL = (
    f"SELECT {CHECK_SELECT} FROM webchecker.checks WHERE site_id = :site"
    " ORDER BY checked_at DESC, check_id DESC LIMIT 101"
)
DEEP_SQL = (
    f"SELECT {CHECK_SELECT} FROM webchecker.checks WHERE site_id = :site AND checked_at <= :at"
    " AND (checked_at, check_id) < (:at, CAST(:id AS uuid))"
    " ORDER BY checked_at DESC, check_id DESC LIMIT 101"
)
LATEST_SQL = (
    f"SELECT {CHECK_SELECT} FROM webchecker.checks WHERE site_id = :site"
    " ORDER BY checked_at DESC LIMIT 1"
)


def main() -> int:
    settings = DatabaseSettings.from_url(server_url())
    with Database(settings) as database:
        generated = prepare_database(database)
        if generated:
            print(f"generated {ROWS:,} checks in {generated:.0f} s")
        with mock_aws():
            os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
            ssm = boto3.client("ssm", region_name="eu-west-1")
            put_sites(ssm)
            sns = boto3.client("sns", region_name="eu-west-1")
            topic = sns.create_topic(Name="bench-alerts")["TopicArn"]
            api_settings = ApiSettings(
                sites=SiteStoreSettings(cache_seconds=300),
                database=settings,
                alert_topic_arn=topic,
            )
            services = Services(
                api_settings, sites=SiteStore(api_settings.sites, client=ssm), sns=sns
            )
            api = Api(services)
            page = api.handle(
                request_event("GET", f"/v1/sites/{SITE}/checks?limit=100", [], b""),
                None,  # type: ignore[arg-type]
            )
            cursor = json.loads(page["body"])["next_cursor"]
            deep_cursor = cursor
            for _ in range(9):  # ten pages down: 1,000 rows
                deeper = api.handle(
                    request_event(
                        "GET", f"/v1/sites/{SITE}/checks?limit=100&cursor={deep_cursor}", [], b""
                    ),
                    None,  # type: ignore[arg-type]
                )
                deep_cursor = json.loads(deeper["body"])["next_cursor"]
            cases = {
                "GET /v1/sites?limit=100 (1,000 sites)": "/v1/sites?limit=100",
                "GET /v1/sites/{id}/status": f"/v1/sites/{SITE}/status",
                "GET /v1/sites/{id}/checks?limit=100": f"/v1/sites/{SITE}/checks?limit=100",
                "  the same, 1,000 rows down (cursor)": (
                    f"/v1/sites/{SITE}/checks?limit=100&cursor={deep_cursor}"
                ),
            }  # fmt: skip
            results = {name: timed(api.handle, target) for name, target in cases.items()}
            services.close()

        plan, checks_ms = explain(database, CHECKS_SQL, site=SITE)
        at_id = json.loads(base64.urlsafe_b64decode(deep_cursor + "=" * (-len(deep_cursor) % 4)))
        deep_plan, deep_ms = explain(
            database, DEEP_SQL, site=SITE, at=datetime.fromisoformat(at_id[0]), id=at_id[1]
        )
        _, latest_ms = explain(database, LATEST_SQL, site=SITE)
        trip_ms = round_trip(database, CHECKS_SQL, site=SITE)
        rows = database.connection().run("SELECT count(*) FROM webchecker.checks")[0][0]

    print(f"\nchecks table: {rows:,} rows, {SITES:,} sites; {REQUESTS} warm requests each")
    print(f"{'request':42} {'p50 ms':>8} {'p99 ms':>8}  goal p99 < {GOAL_P99_MS:g} ms")
    failed = False
    for name, times in results.items():
        p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
        failed |= p99 >= GOAL_P99_MS
        print(f"{name:42} {p50:8.2f} {p99:8.2f}  {'ok' if p99 < GOAL_P99_MS else 'MISSED'}")
    handler_p50 = percentile(results["GET /v1/sites/{id}/checks?limit=100"], 0.5)
    print(
        f"\ndatabase alone, checks page: execution {checks_ms:.2f} ms (EXPLAIN ANALYZE), "
        f"round trip through pg8000 {trip_ms:.2f} ms (median); handler p50 = "
        f"{handler_p50 / trip_ms:.1f}x the round trip"
    )
    print(f"database alone, deep page: execution {deep_ms:.2f} ms; latest check {latest_ms:.2f} ms")
    print("\nplan of the checks page:")
    print("  " + "\n  ".join(plan))
    print("plan of the deep page:")
    print("  " + "\n  ".join(deep_plan))
    sequential = [line for line in plan + deep_plan if "Seq Scan" in line]
    verdict = "NO sequential scan of checks" if not sequential else f"SEQUENTIAL SCAN: {sequential}"
    print(f"\nindex use: {verdict}")
    return 1 if failed or sequential else 0


if __name__ == "__main__":
    sys.exit(main())
