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
    lines = run_cli(capsys).splitlines()

    assert lines[0].split()[:4] == ["SITE", "CHECKS", "AVAIL", "%"]
    rows = {line.split()[0]: line for line in lines[1:]}
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
