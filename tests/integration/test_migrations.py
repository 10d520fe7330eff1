"""Migrations, partitions and retention on real PostgreSQL; the embedded server's lifecycle."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.messages import message, records
from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.store.batch import CheckStore
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import (
    MIGRATIONS,
    RetentionSettings,
    apply_retention,
    ensure_partitions,
    existing_partitions,
    migrate,
)

pytestmark = pytest.mark.postgres


def test_several_writers_migrating_at_once_make_one_schema(
    database_settings: DatabaseSettings,
) -> None:
    writers = 8
    barrier = threading.Barrier(writers)
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def cold_start() -> None:
        with Database(database_settings) as database:
            try:
                barrier.wait(timeout=10)
                applied.append(migrate(database, today=date(2026, 11, 27)))
            except BaseException as error:
                errors.append(error)

    threads = [threading.Thread(target=cold_start) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(applied, key=len) == [[]] * (writers - 1) + [[m.version for m in MIGRATIONS]]
    with Database(database_settings) as database, database.transaction() as connection:
        versions = connection.run("SELECT version FROM webchecker.schema_migrations")
        schemas = connection.run("SELECT count(*) FROM pg_namespace WHERE nspname = 'webchecker'")[
            0
        ][0]
        partitions = existing_partitions(connection, "webchecker")
    assert versions == [[m.version] for m in MIGRATIONS]
    assert schemas == 1
    assert partitions == {"checks_default", "checks_2026_11", "checks_2026_12"}


def test_migrate_again_changes_nothing(database: Database) -> None:
    assert migrate(database) == [m.version for m in MIGRATIONS]
    assert migrate(database) == []


def test_a_new_partition_takes_over_rows_the_default_partition_held(database: Database) -> None:
    migrate(database, today=date(2026, 11, 27))
    old = datetime(2025, 3, 15, 8, 30, tzinfo=UTC)
    # older than the retention period: the store makes no partition for it, the rows land
    # in the default partition
    store = CheckStore(database, retention=RetentionSettings(retention_days=400))
    store.write(records([message(checked_at=old), message(checked_at=old)]))
    with database.transaction() as connection:
        before = connection.run("SELECT count(*) FROM webchecker.checks_default")[0][0]

    ensure_partitions(database, [date(2025, 3, 1)])

    with database.transaction() as connection:
        after = connection.run("SELECT count(*) FROM webchecker.checks_default")[0][0]
        moved = connection.run("SELECT count(*) FROM webchecker.checks_2025_03")[0][0]
    assert (before, after, moved) == (2, 0, 2)


def _months_back(count: int) -> date:
    """The first day of the month ``count`` months before this one (within retention, so
    the store makes its partition)."""
    index = datetime.now(UTC).year * 12 + datetime.now(UTC).month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def test_two_connections_creating_the_same_partitions_at_once_both_succeed(
    database: Database, database_settings: DatabaseSettings
) -> None:
    migrate(database)
    months = [_months_back(n) for n in range(3, 9)]
    barrier = threading.Barrier(2)
    results: list[set[date]] = []
    errors: list[BaseException] = []

    def create() -> None:
        with Database(database_settings) as own:
            try:
                for month in months:
                    barrier.wait(timeout=30)
                    results.append(ensure_partitions(own, [month]))
            except BaseException as error:
                errors.append(error)
                barrier.abort()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(results, key=min) == sorted([{month} for month in months] * 2, key=min)
    with database.transaction() as connection:
        partitions = existing_partitions(connection, "webchecker")
    assert {f"checks_{month:%Y_%m}" for month in months} <= partitions


def _wait_until_blocked(database: Database, pid: int) -> str:
    """Waits until the backend ``pid`` waits for a lock; returns what it waits for."""
    for _ in range(500):
        rows = database.connection().run(
            "SELECT wait_event FROM pg_stat_activity WHERE pid = :pid AND wait_event_type = 'Lock'",
            pid=pid,
        )
        if rows:
            return str(rows[0][0])
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for a lock")


def test_a_batch_starting_while_another_writer_attaches_its_month_is_not_refused(
    database: Database, database_settings: DatabaseSettings
) -> None:
    """Without the partition lock the batch's row, routed to the default partition before
    the attach and checked after it, failed with 23514."""
    migrate(database)
    month = _months_back(4)
    moment = datetime(month.year, month.month, 10, 12, tzinfo=UTC)
    holder, creator, writer = (Database(database_settings) for _ in range(3))
    outcome: dict[str, object] = {}

    def run(name: str, work: Callable[[], object]) -> threading.Thread:
        def target() -> None:
            try:
                outcome[name] = work()
            except BaseException as error:
                outcome[name] = error

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    try:
        # the attach (which needs this lock) waits while the default partition is locked
        hold = holder.connection()
        hold.run("BEGIN")
        hold.run("LOCK TABLE webchecker.checks IN SHARE UPDATE EXCLUSIVE MODE")
        creator_pid, writer_pid = (
            own.connection().run("SELECT pg_backend_pid()")[0][0] for own in (creator, writer)
        )
        creating = run("create", lambda: ensure_partitions(creator, [month]))
        _wait_until_blocked(database, creator_pid)
        store = CheckStore(writer)
        store._known_months.add(month)  # another container: it knows nothing to create
        batch = [message(checked_at=moment + timedelta(minutes=n)) for n in range(3)]
        writing = run("write", lambda: store.write(records(batch, first_offset=10)))
        _wait_until_blocked(database, writer_pid)
        hold.run("COMMIT")
        creating.join(timeout=30)
        writing.join(timeout=30)
    finally:
        for own in (holder, creator, writer):
            own.close()

    assert outcome["create"] == {month}
    assert not isinstance(outcome["write"], BaseException), outcome["write"]
    with database.transaction() as connection:
        placed = connection.run(
            "SELECT tableoid::regclass::text, count(*) FROM webchecker.checks GROUP BY 1"
        )
    assert placed == [[f"webchecker.checks_{month:%Y_%m}", 3]]


def test_retention_drops_partitions_past_the_cutoff_and_old_rollups(database: Database) -> None:
    migrate(database, today=date(2026, 11, 27))
    ensure_partitions(database, [date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1)])
    store = CheckStore(database, retention=RetentionSettings(retention_days=0))
    store.write(
        records([message(checked_at=datetime(2026, m, 10, tzinfo=UTC)) for m in (8, 9, 10, 11)])
    )

    with database.transaction() as connection:
        for offset, received in ((1, "2026-09-01"), (2, "2026-11-20")):
            connection.run(
                'INSERT INTO webchecker.check_rejects (topic, partition, "offset", reason,'
                " received_at) VALUES ('t', 0, :offset, 'bad', CAST(:received AS timestamptz))",
                offset=offset,
                received=received,
            )

    dropped = apply_retention(
        database,
        RetentionSettings(retention_days=50, rollup_retention_days=80),
        now=datetime(2026, 11, 27, tzinfo=UTC),
    )

    # the cutoff is 8 October: all of September is older, October is not
    assert dropped == ["checks_2026_08", "checks_2026_09"]
    with database.transaction() as connection:
        months = connection.run(
            "SELECT extract(month FROM checked_at)::int FROM webchecker.checks ORDER BY 1"
        )
        hours = connection.run(
            "SELECT extract(month FROM hour)::int FROM webchecker.checks_hourly ORDER BY 1"
        )
        rejects = connection.run('SELECT "offset" FROM webchecker.check_rejects')
    assert months == [[10], [11]]
    assert rejects == [[2]]
    assert hours == [[9], [10], [11]]


_OWNER = """
import sys, time
from webchecker.local.embedded.postgres import EmbeddedPostgres
server = EmbeddedPostgres(sys.argv[1]).start()
print(server.url(), flush=True)
time.sleep(600)
"""


def test_a_server_left_by_a_killed_owner_is_found_and_stopped() -> None:
    # not under tmp_path: as root the server runs as another user, which must reach it
    parent = Path(tempfile.mkdtemp(prefix="webchecker-stale-"))
    data_dir = parent / "data"
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        url = owner.stdout.readline().strip()
        shared = EmbeddedPostgres(data_dir).start()
        assert not shared.owned  # its owner is alive: shared, and left running when done
        shared.stop()
        assert shared.running
        assert not shared.stop_if_stale()
        with Database(DatabaseSettings.from_url(url)) as database:
            stale_since = database.connection().run("SELECT pg_postmaster_start_time()")[0][0]
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        assert shared.running  # SIGKILL skipped every cleanup: the server is stale

        server = EmbeddedPostgres(data_dir).start()

        assert server.owned
        assert server.url() == url
        with Database(DatabaseSettings.from_url(server.url())) as database:
            started = database.connection().run("SELECT pg_postmaster_start_time()")[0][0]
        assert started > stale_since  # the stale server was stopped, a new one started
        server.stop()
        assert not server.running
    finally:
        owner.kill()
        owner.wait(timeout=10)
        shutil.rmtree(parent, ignore_errors=True)
