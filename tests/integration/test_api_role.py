"""Migration 3: the API's NOLOGIN role reads results and edits maintenance windows only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pg8000.exceptions
import pytest

from webchecker.store.database import Database, DatabaseSettings, sqlstate
from webchecker.store.migrations import MIGRATIONS, _statements, migrate

pytestmark = pytest.mark.postgres

INSUFFICIENT_PRIVILEGE = "42501"


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@pytest.fixture
def api_login(database: Database, database_url: str) -> Iterator[Database]:
    """A login user granted webchecker_api, connected to the migrated database."""
    migrate(database)
    user = f"wc_api_{uuid.uuid4().hex[:8]}"
    with database.transaction() as connection:
        connection.run(f"CREATE ROLE {user} LOGIN")
        connection.run(f"GRANT webchecker_api TO {user}")
    try:
        with Database(DatabaseSettings.from_url(as_user(database_url, user))) as login:
            yield login
    finally:
        with database.transaction() as connection:
            connection.run(f"DROP OWNED BY {user}")
            connection.run(f"DROP ROLE {user}")


def test_the_role_reads_results_and_edits_only_maintenance_windows(api_login: Database) -> None:
    with api_login.transaction() as connection:
        for table in ("checks", "checks_hourly", "site_state", "incidents", "alerts"):
            assert connection.run(f"SELECT count(*) FROM webchecker.{table}") == [[0]]
        connection.run(
            "INSERT INTO webchecker.maintenance_windows (window_id, starts_at, ends_at)"
            " VALUES (gen_random_uuid(), now(), now() + interval '1 hour')"
        )
        assert connection.run("DELETE FROM webchecker.maintenance_windows RETURNING 1") == [[1]]
    for statement in (
        "DELETE FROM webchecker.checks",
        "INSERT INTO webchecker.incidents (incident_id, site_id, url, opened_at)"
        " VALUES (gen_random_uuid(), 'x', 'https://x/', now())",
        "UPDATE webchecker.site_state SET state = 'up'",
        "DROP TABLE webchecker.maintenance_windows",
    ):
        with (
            pytest.raises(pg8000.exceptions.DatabaseError) as refused,
            api_login.transaction() as connection,
        ):
            connection.run(statement)
        assert sqlstate(refused.value) in (INSUFFICIENT_PRIVILEGE, "42501")


def test_the_role_migration_runs_again_without_error(database: Database) -> None:
    migrate(database)
    role = next(m for m in MIGRATIONS if "API's role" in m.name)
    with database.transaction() as connection:
        for statement in _statements(role.sql.format(schema='"webchecker"')):
            connection.run(statement)
        granted = connection.run(
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = 'webchecker_api' AND table_name = 'maintenance_windows'"
            " ORDER BY privilege_type"
        )
    assert [row[0] for row in granted] == ["DELETE", "INSERT", "SELECT", "UPDATE"]


def test_statements_keep_dollar_quoted_bodies_whole() -> None:
    sql = "CREATE TABLE a (x int);\nDO $$ BEGIN PERFORM 1; PERFORM 2; END $$;\n-- c; d\nSELECT 1"
    assert _statements(sql) == [
        "CREATE TABLE a (x int)",
        "DO $$ BEGIN PERFORM 1; PERFORM 2; END $$",
        "SELECT 1",
    ]
