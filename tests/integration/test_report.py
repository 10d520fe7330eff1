"""`webchecker report` on real PostgreSQL: per-site figures from rollups and latest rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.messages import failed_message, message, records
from webchecker.cli import main
from webchecker.histogram import BOUNDS_MS, bucket_of
from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.report import build_report
from webchecker.store.batch import CheckStore
from webchecker.store.database import Database
from webchecker.store.migrations import RetentionSettings, migrate

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)
LATENCIES = [float(ms) for ms in range(10, 1010, 10)]  # 100 checks, 10..1000 ms


@pytest.fixture
def stored(database: Database) -> Database:
    migrate(database)
    store = CheckStore(database, retention=RetentionSettings())
    start = NOW - timedelta(hours=3)
    shop = [
        message(site_id="shop", response_time_ms=ms, checked_at=start + timedelta(minutes=i))
        for i, ms in enumerate(LATENCIES)
    ]
    shop[40] = failed_message(
        site_id="shop", checked_at=start + timedelta(minutes=40), response_time_ms=410.0,
        error="status", status_code=503, error_detail="expected 200-399, got 503",
    )  # fmt: skip
    api = [
        failed_message(
            site_id="api",
            response_time_ms=None,
            status_code=None,
            error="timeout",
            error_detail="no response within 10s",
            checked_at=start + timedelta(minutes=i),
        )
        for i in range(3)
    ]
    old = [message(site_id="old", checked_at=NOW - timedelta(days=3))]
    store.write(records(shop + api + old))
    return database


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["report", *args]) == 0
    return capsys.readouterr().out


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("DB_SCHEMA", raising=False)


def test_json_report_has_every_field_per_site(
    stored: Database, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    report = {entry["site_id"]: entry for entry in json.loads(run_cli(capsys, "--json"))}

    assert sorted(report) == ["api", "shop"]  # "old" is outside the default 24 h
    shop, api = report["shop"], report["api"]
    assert set(shop) >= {
        "site_id", "checks", "failures", "availability", "p50_ms", "p95_ms", "p99_ms",
        "last_checked_at", "last_status_code", "last_error",
    }  # fmt: skip
    assert (shop["checks"], shop["failures"], shop["availability"]) == (100, 1, 99.0)
    assert shop["last_status_code"] == 200
    assert shop["last_checked_at"] == (NOW - timedelta(hours=3) + timedelta(minutes=99)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    assert shop["last_error"] == "status"
    for name, fraction in (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        exact = sorted(LATENCIES)[int(fraction * len(LATENCIES)) - 1]
        bucket = bucket_of(exact)
        low = BOUNDS_MS[bucket - 1] if bucket else 0.0
        high = BOUNDS_MS[bucket] if bucket < len(BOUNDS_MS) else max(LATENCIES)
        assert low <= shop[name] <= high, (name, exact, shop[name])
    assert shop["p50_ms"] < shop["p95_ms"] <= shop["p99_ms"]
    assert (api["checks"], api["failures"], api["availability"]) == (3, 3, 0.0)
    assert (api["p50_ms"], api["last_status_code"], api["last_error"]) == (None, None, "timeout")


def test_site_filter_and_a_longer_period(
    stored: Database, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    only = json.loads(run_cli(capsys, "--json", "--site", "old", "--since", "7d"))

    assert [entry["site_id"] for entry in only] == ["old"]
    assert (only[0]["checks"], only[0]["availability"], only[0]["last_error"]) == (1, 100.0, None)


def test_table_report_for_a_terminal(
    stored: Database, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    table, note = run_cli(capsys).split("\n\n")
    lines = table.splitlines()

    assert lines[0].split()[:4] == ["SITE", "CHECKS", "AVAIL", "%"]
    rows = {line.split()[0]: line for line in lines[1:]}
    # issue 9 item 15: the percentiles are said to be estimates, with their resolution
    assert note.startswith("P50/P95/P99 are estimates")
    assert "5, 10, 20, 30, 50" in note
    assert "60000 ms" in note
    assert sorted(rows) == ["api", "shop"]
    assert rows["shop"].split()[1:3] == ["100", "99.00"]
    assert "timeout at" in rows["api"]
    assert "no response within 10s" in rows["api"]


def test_report_reads_rollups_not_only_rows(stored: Database) -> None:
    # the rollups alone carry counts and percentiles: a year is as cheap as a day
    with stored.transaction() as connection:
        connection.run("DELETE FROM webchecker.checks WHERE site_id = 'shop'")

    (shop,) = build_report(stored, since=NOW - timedelta(hours=24), site_id="shop")

    assert (shop.checks, shop.failures) == (100, 1)
    assert shop.p50_ms is not None
    assert shop.last_checked_at is None


def test_an_empty_database_reports_no_checks(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys).strip() == "no checks in this period"
    assert json.loads(run_cli(capsys, "--json")) == []


def test_a_bad_period_is_refused(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err


def test_without_database_url_the_local_stacks_embedded_database_is_used_and_stopped() -> None:
    # not under tmp_path: as root the server runs as another user, which must reach it
    parent = Path(tempfile.mkdtemp(prefix="webchecker-pg-"))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DB_HOST"}}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "webchecker", "report", "--json", "--data-dir",
             str(parent / "data")],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == []
        assert (parent / "data" / "PG_VERSION").exists()
        assert not EmbeddedPostgres(parent / "data").running  # stopped when the command ended
    finally:
        EmbeddedPostgres(parent / "data").stop_if_stale()
        shutil.rmtree(parent, ignore_errors=True)


# -- issue 9 item 15: exact windows below an hour, percentile resolution, documented bounds --


@pytest.fixture
def every_minute(database: Database) -> Database:
    """One check of "tick" every minute for the last three hours, ``i`` ms slow."""
    migrate(database)
    store = CheckStore(database, retention=RetentionSettings())
    checks = [
        message(site_id="tick", response_time_ms=float(i), checked_at=NOW - timedelta(minutes=i))
        for i in range(1, 181)
    ]
    store.write(records(checks))
    return database


@pytest.mark.parametrize("minutes", [1, 10, 59, 60, 61, 95, 179])
def test_windows_are_exact_below_and_across_hours(every_minute: Database, minutes: int) -> None:
    # Not rounded to the hour: exactly the checks at or after `since`.
    since = NOW - timedelta(minutes=minutes)
    (tick,) = build_report(every_minute, since=since, site_id="tick")

    assert tick.checks == minutes
    assert tick.p50_ms is not None
    assert tick.p50_bucket_ms is not None
    assert tick.p50_bucket_ms[0] <= tick.p50_ms <= tick.p50_bucket_ms[1]
    exact_median = sorted(range(1, minutes + 1))[max(0, (minutes + 1) // 2 - 1)]
    assert tick.p50_bucket_ms[0] <= exact_median <= tick.p50_bucket_ms[1] + 1


def test_a_window_on_a_whole_hour_reads_only_rollups(every_minute: Database) -> None:
    hour = NOW.replace(minute=0, second=0) - timedelta(hours=1)
    with every_minute.transaction() as connection:
        connection.run("DELETE FROM webchecker.checks WHERE checked_at < :hour", hour=hour)

    (tick,) = build_report(every_minute, since=hour, site_id="tick")

    assert tick.checks == sum(1 for i in range(1, 181) if NOW - timedelta(minutes=i) >= hour)


def test_since_one_minute_on_the_command_line(
    database: Database, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate(database)
    now = datetime.now(UTC)
    recent = [message(site_id="m", checked_at=now - timedelta(seconds=s)) for s in (5, 20, 40)]
    older = [message(site_id="m", checked_at=now - timedelta(minutes=m)) for m in (2, 5, 30)]
    CheckStore(database, retention=RetentionSettings()).write(records(recent + older))

    (report,) = json.loads(run_cli(capsys, "--json", "--since", "1m"))

    assert report["checks"] == 3  # before: 6, the whole hour
    low, high = report["p50_bucket_ms"]
    assert low <= report["p50_ms"] <= high


def test_the_histogram_bounds_are_documented_in_the_database(database: Database) -> None:
    migrate(database)
    with database.transaction() as connection:
        (comment,) = connection.run(
            "SELECT col_description(CAST('webchecker.checks_hourly' AS regclass), attnum)"
            " FROM pg_attribute WHERE attrelid = CAST('webchecker.checks_hourly' AS regclass)"
            " AND attname = 'latency_histogram'"
        )[0]
    assert ", ".join(f"{bound:g}" for bound in BOUNDS_MS) + " ms" in comment
    assert f"{len(BOUNDS_MS) + 1} buckets" in comment


def test_the_report_says_each_sites_state_and_since_when(
    stored: Database, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    report = {entry["site_id"]: entry for entry in json.loads(run_cli(capsys, "--json"))}
    start = NOW - timedelta(hours=3)
    assert (report["shop"]["state"], report["api"]["state"]) == ("up", "down")
    # up from the first of its passes (one failure later is below the threshold); down
    # from its first failed check
    assert report["shop"]["state_since"] == start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert report["api"]["state_since"] == start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    table = run_cli(capsys).split("\n\n")[0].splitlines()
    assert "STATE" in table[0]
    rows = {line.split()[0]: line for line in table[1:]}
    assert f"down since {start:%Y-%m-%d %H:%M:%S}" in rows["api"]
    assert f"up since {start:%Y-%m-%d %H:%M:%S}" in rows["shop"]
