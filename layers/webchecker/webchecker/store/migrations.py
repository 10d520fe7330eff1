"""Versioned schema migrations, monthly partitions of ``checks``, and retention.

``migrate()`` is safe when many writers cold-start at once: a quick read says whether
anything is pending, and the migrations themselves run in one transaction under a
transaction-level advisory lock, re-reading the applied versions after taking it. The lock
is released on commit or rollback, also when the connection drops.

``checks`` is partitioned by month of ``checked_at``; a default partition takes any row
whose month has no partition yet, so no row is ever refused. ``ensure_partitions()``
creates a month's partition (moving rows the default partition already holds for it).
``apply_retention()`` drops partitions older than the retention period.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pg8000.exceptions
import pg8000.native

from webchecker.config import env_int
from webchecker.histogram import BUCKETS, describe_bounds
from webchecker.store.database import Database, quote_identifier, sqlstate

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 400
DEFAULT_ROLLUP_RETENTION_DAYS = 3 * 366
_LOCK_NAMESPACE = "webchecker.store.migrations"
_PARTITION_LOCK_NAMESPACE = "webchecker.partitions"
_LOCK_NOT_AVAILABLE = "55P03"
_PARTITION_NAME = re.compile(r"checks_(?P<year>\d{4})_(?P<month>\d{2})")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str  # ``{schema}`` stands for the quoted schema name


#: What ``checks_hourly.latency_histogram`` holds (migration 3 puts it in the database).
_HISTOGRAM_COMMENT = (
    f"Response times of the hour per bucket ({BUCKETS} buckets, elements from 1): element 1 "
    "counts latencies below the first bound, element i those in [bound i-1, bound i), the "
    f"last those at or above the last bound. Upper bounds: {describe_bounds()}. That is "
    "width_bucket(response_time_ms, bounds) + 1. Percentiles from merged histograms are "
    "estimates within one bucket (webchecker.histogram)."
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "checks, rejects, hourly rollups",
        """
CREATE TABLE {schema}.checks (
    check_id uuid NOT NULL,
    schema smallint NOT NULL,
    site_id text NOT NULL,
    url text NOT NULL,
    region text,
    scheduled_at timestamptz NOT NULL,
    checked_at timestamptz NOT NULL,
    response_time_ms double precision,
    status_code integer,
    ok boolean NOT NULL,
    error text,
    error_detail text,
    regex_matched boolean,
    dns_ms double precision,
    connect_ms double precision,
    tls_ms double precision,
    ttfb_ms double precision,
    tls_cert_expires_at timestamptz,
    stored_at timestamptz NOT NULL DEFAULT now(),
    -- a unique key on a partitioned table must hold the partition column; a redelivered
    -- check carries the same checked_at, so this still stores each check once
    CONSTRAINT checks_check_id_key UNIQUE (check_id, checked_at)
) PARTITION BY RANGE (checked_at);

CREATE TABLE {schema}.checks_default PARTITION OF {schema}.checks DEFAULT;

-- one site over a time range, and the latest check of a site (ORDER BY ... DESC LIMIT 1)
CREATE INDEX checks_site_time ON {schema}.checks (site_id, checked_at DESC);
-- the latest failure of a site, without walking its successes
CREATE INDEX checks_site_failures ON {schema}.checks (site_id, checked_at DESC) WHERE NOT ok;

CREATE TABLE {schema}.check_rejects (
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    raw bytea,
    reason text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT check_rejects_position_key UNIQUE (topic, partition, "offset")
);

CREATE TABLE {schema}.checks_hourly (
    site_id text NOT NULL,
    hour timestamptz NOT NULL,
    checks integer NOT NULL,
    failures integer NOT NULL,
    latency_count integer NOT NULL,
    latency_sum_ms double precision NOT NULL,
    latency_min_ms double precision,
    latency_max_ms double precision,
    latency_histogram integer[] NOT NULL,
    PRIMARY KEY (site_id, hour)
);
CREATE INDEX checks_hourly_hour ON {schema}.checks_hourly (hour);
""",
    ),
    Migration(
        2,
        "site state, incidents, alert outbox, maintenance windows",
        """
-- One row per site that has had a check applied: moved by the writer in the batch's
-- transaction (store/incidents.py), read by the API, the CLI and the status page.
CREATE TABLE {schema}.site_state (
    site_id text PRIMARY KEY,
    state text NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'up', 'down')),
    since timestamptz,
    url text NOT NULL,
    tags text[] NOT NULL DEFAULT '{{}}',
    last_check_id uuid,
    last_scheduled_at timestamptz,
    last_checked_at timestamptz,
    incident_id uuid,
    flapping boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- the state machine's memory (store/incidents.py): the current streak of equal
    -- outcomes, from its first check
    alerts boolean NOT NULL DEFAULT true,
    fail_streak integer NOT NULL DEFAULT 0,
    pass_streak integer NOT NULL DEFAULT 0,
    streak_started_at timestamptz,
    streak_check_id uuid,
    streak_error text,
    streak_error_detail text,
    streak_status_code integer,
    -- the open incident (incident_id) as its alerts need it
    incident_opened_at timestamptz,
    incident_error text,
    incident_error_detail text,
    incident_status_code integer,
    incident_notified boolean NOT NULL DEFAULT false,
    -- when recent incidents opened (flapping detection), and the certificate warned about
    recent_opens timestamptz[] NOT NULL DEFAULT '{{}}',
    cert_warned_expires_at timestamptz
) WITH (fillfactor = 50);  -- every check updates its site's row: room for HOT updates

CREATE TABLE {schema}.incidents (
    incident_id uuid PRIMARY KEY,
    site_id text NOT NULL,
    url text NOT NULL,
    tags text[] NOT NULL DEFAULT '{{}}',
    opened_at timestamptz NOT NULL,
    resolved_at timestamptz,
    error text,
    error_detail text,
    status_code integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- when its incident.opened alert was written (null: not notified: alerts off, held
    -- while flapping), and the reminders since (the notifier writes them)
    notified_at timestamptz,
    last_reminded_at timestamptz,
    reminders integer NOT NULL DEFAULT 0
);
CREATE INDEX incidents_site_opened ON {schema}.incidents (site_id, opened_at DESC);
CREATE INDEX incidents_opened ON {schema}.incidents (opened_at DESC);
-- at most one open incident per site
CREATE UNIQUE INDEX incidents_open_site ON {schema}.incidents (site_id) WHERE resolved_at IS NULL;

-- The outbox: an alert exists exactly when its transition was committed; the notifier
-- publishes pending ones in seq order and marks them sent.
CREATE TABLE {schema}.alerts (
    alert_id uuid PRIMARY KEY,
    seq bigserial NOT NULL UNIQUE,
    type text NOT NULL,
    site_id text,
    incident_id uuid,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    -- set when the alert went out inside a summary alert (many sites in one tick)
    summary_id uuid
);
CREATE INDEX alerts_pending ON {schema}.alerts (seq) WHERE sent_at IS NULL;
CREATE INDEX alerts_site_created ON {schema}.alerts (site_id, created_at DESC);

-- site_ids and tags both NULL: the window covers every site
CREATE TABLE {schema}.maintenance_windows (
    window_id uuid PRIMARY KEY,
    site_ids text[],
    tags text[],
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT maintenance_windows_order CHECK (ends_at > starts_at)
);
CREATE INDEX maintenance_windows_ends ON {schema}.maintenance_windows (ends_at);
""",
    ),
    # -- issue 9 item 15: the histogram bucket bounds, documented where the arrays are --
    Migration(
        3,
        "comments: latency histogram bucket bounds",
        f"""
COMMENT ON COLUMN {{schema}}.checks_hourly.latency_histogram IS '{_HISTOGRAM_COMMENT}'
;
COMMENT ON COLUMN {{schema}}.checks_hourly.latency_min_ms IS
    'Fastest response of the hour (exact): bounds the first histogram bucket'
;
COMMENT ON COLUMN {{schema}}.checks_hourly.latency_max_ms IS
    'Slowest response of the hour (exact): bounds the last histogram bucket'
""",
    ),
    Migration(
        4,
        "the API's role: read results, edit maintenance windows",
        """
-- The REST API's database user needs only to read results and to edit maintenance windows.
-- webchecker_api is a NOLOGIN group role with exactly that; the operator grants it to the
-- API's login user (GRANT webchecker_api TO webchecker_api_user). Roles are cluster-wide:
-- every schema grants to the same role. A migrating user that may not create roles (no
-- CREATEROLE) gets a notice and the writer goes on; rerunning this changes nothing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'webchecker_api') THEN
        CREATE ROLE webchecker_api NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'webchecker_api not created (%): grant the API user access by hand', SQLERRM;
END
$$;
DO $$
BEGIN
    GRANT USAGE ON SCHEMA {schema} TO webchecker_api;
    GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO webchecker_api;
    GRANT INSERT, UPDATE, DELETE ON {schema}.maintenance_windows TO webchecker_api;
    -- tables and partitions created later by the migrating user are readable too
    ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO webchecker_api;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'webchecker_api not granted (%)', SQLERRM;
END
$$;
""",
    ),
)


def latest_version() -> int:
    return MIGRATIONS[-1].version


def migrate(database: Database, *, today: date | None = None) -> list[int]:
    """Applies pending migrations and creates this and next month's partitions.

    Returns the versions applied by this call (empty when another process did it).
    """
    schema = database.schema
    applied: list[int] = []
    if _current_version(database) < latest_version():
        with database.transaction() as connection:
            connection.run("SELECT pg_advisory_xact_lock(hashtext(:key))", key=_lock_key(schema))
            connection.run(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
            connection.run(
                f"CREATE TABLE IF NOT EXISTS {quote_identifier(schema)}.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                row[0]
                for row in connection.run(
                    f"SELECT version FROM {quote_identifier(schema)}.schema_migrations"
                )
            }
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                logger.info("applying migration %s: %s", migration.version, migration.name)
                for statement in _statements(migration.sql.format(schema=quote_identifier(schema))):
                    connection.run(statement)
                connection.run(
                    f"INSERT INTO {quote_identifier(schema)}.schema_migrations (version, name)"
                    " VALUES (:version, :name)",
                    version=migration.version,
                    name=migration.name,
                )
                applied.append(migration.version)
    today = today or datetime.now(UTC).date()
    ensure_partitions(database, [today, _add_months(today, 1)])
    return applied


def _current_version(database: Database) -> int:
    """The applied version without taking the lock (0 when nothing exists yet)."""
    table = f"{database.schema}.schema_migrations"
    with database.transaction() as connection:
        rows = connection.run("SELECT to_regclass(:table) IS NOT NULL", table=table)
        if not rows[0][0]:
            return 0
        version = connection.run(
            f"SELECT coalesce(max(version), 0) FROM {quote_identifier(database.schema)}"
            ".schema_migrations"
        )[0][0]
        return int(version)


def _statements(sql: str) -> list[str]:
    """Splits a migration into statements on the semicolons outside ``$$``-quoted bodies
    (ours hold no semicolons inside literals)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    statements: list[str] = []
    current = ""
    for index, part in enumerate("\n".join(lines).split("$$")):
        if index % 2:  # a DO block's body: kept whole
            current += f"$${part}$$"
            continue
        first, *rest = part.split(";")
        current += first
        for piece in rest:
            statements.append(current)
            current = piece
    statements.append(current)
    return [statement.strip() for statement in statements if statement.strip()]


def _lock_key(schema: str) -> str:
    return f"{_LOCK_NAMESPACE}.{schema}"


# -- partitions -------------------------------------------------------------------------


def month_start(moment: date) -> date:
    return moment.replace(day=1)


def _add_months(moment: date, months: int) -> date:
    index = moment.year * 12 + moment.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"checks_{month:%Y_%m}"


def existing_partitions(connection: pg8000.native.Connection, schema: str) -> set[str]:
    rows = connection.run(
        "SELECT child.relname FROM pg_inherits"
        " JOIN pg_class parent ON parent.oid = pg_inherits.inhparent"
        " JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
        " JOIN pg_namespace ns ON ns.oid = parent.relnamespace"
        " WHERE ns.nspname = :schema AND parent.relname = 'checks'",
        schema=schema,
    )
    return {row[0] for row in rows}


def ensure_partitions(database: Database, months: Iterable[date]) -> set[date]:
    """Makes sure each month has its partition; returns the months that now have one."""
    wanted = {month_start(month) for month in months}
    with database.transaction() as connection:
        have = existing_partitions(connection, database.schema)
        missing = sorted(month for month in wanted if partition_name(month) not in have)
        if missing:
            # exclusive: waits for the batches in flight (share_partitions), and holds new
            # ones back until the partitions are attached
            connection.run(
                "SELECT pg_advisory_xact_lock(hashtext(:key))",
                key=_partition_lock_key(database.schema),
            )
            have = existing_partitions(connection, database.schema)  # another writer may have
            for month in missing:
                if partition_name(month) not in have:
                    _create_partition(connection, database.schema, month)
    return wanted


def share_partitions(connection: pg8000.native.Connection, schema: str) -> None:
    """Holds the partition lock in shared mode until the transaction ends; a batch takes it
    before its first row.

    A row routed to the default partition is checked against the default's constraint once
    the default's lock is granted: a partition attached meanwhile by another writer (whose
    ``ensure_partitions`` holds the default locked) makes that row fail with 23514 (check
    violation). So ``ensure_partitions`` takes the lock exclusively: it waits for the
    batches in flight, and new batches start once the partition is there.
    """
    connection.run(
        "SELECT pg_advisory_xact_lock_shared(hashtext(:key))", key=_partition_lock_key(schema)
    )


def _partition_lock_key(schema: str) -> str:
    return f"{_PARTITION_LOCK_NAMESPACE}.{schema}"


def _create_partition(connection: pg8000.native.Connection, schema: str, month: date) -> None:
    """Creates one month's partition, moving matching rows out of the default partition.

    Attaching a range next to a default partition fails if the default holds rows of that
    range, so they are moved first, in the same transaction.
    """
    quoted = quote_identifier(schema)
    name = f"{quoted}.{quote_identifier(partition_name(month))}"
    low, high = month.isoformat(), _add_months(month, 1).isoformat()
    logger.info("creating partition %s", name)
    connection.run(
        f"CREATE TABLE {name} (LIKE {quoted}.checks INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    bounds = f"checked_at >= '{low}T00:00:00Z' AND checked_at < '{high}T00:00:00Z'"
    # no writer may add to the default partition between the move and the attach
    connection.run(f"LOCK TABLE {quoted}.checks_default IN EXCLUSIVE MODE")
    connection.run(
        f"WITH moved AS (DELETE FROM {quoted}.checks_default WHERE {bounds} RETURNING *)"
        f" INSERT INTO {name} SELECT * FROM moved"
    )
    connection.run(
        f"ALTER TABLE {quoted}.checks ATTACH PARTITION {name}"
        f" FOR VALUES FROM ('{low}T00:00:00Z') TO ('{high}T00:00:00Z')"
    )


# -- retention --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RetentionSettings:
    """How long to keep checks (``RETENTION_DAYS``) and hourly rollups; 0 keeps forever."""

    retention_days: int = DEFAULT_RETENTION_DAYS
    rollup_retention_days: int = DEFAULT_ROLLUP_RETENTION_DAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetentionSettings:
        return cls(
            retention_days=env_int("RETENTION_DAYS", DEFAULT_RETENTION_DAYS, env, minimum=0),
            rollup_retention_days=env_int(
                "ROLLUP_RETENTION_DAYS", DEFAULT_ROLLUP_RETENTION_DAYS, env, minimum=0
            ),
        )


def apply_retention(
    database: Database, settings: RetentionSettings, *, now: datetime | None = None
) -> list[str]:
    """Drops whole partitions older than the retention period; returns their names.

    A partition goes only once all of its month is past the cutoff. Old rows in the default
    partition, old rejects and old rollups are deleted. Runs with a short lock timeout so
    that it never blocks writers for long: if a lock is not available it gives up until
    next time.
    """
    now = now or datetime.now(UTC)
    quoted = quote_identifier(database.schema)
    dropped: list[str] = []
    try:
        with database.transaction() as connection:
            connection.run("SET LOCAL lock_timeout = '2s'")
            if settings.retention_days:
                cutoff = now - timedelta(days=settings.retention_days)
                for name in sorted(existing_partitions(connection, database.schema)):
                    match = _PARTITION_NAME.fullmatch(name)
                    if match is None:  # the default partition, or one we did not make
                        continue
                    month = date(int(match["year"]), int(match["month"]), 1)
                    if _add_months(month, 1) <= cutoff.date():
                        connection.run(f"DROP TABLE {quoted}.{quote_identifier(name)}")
                        dropped.append(name)
                for table, column in (
                    ("checks_default", "checked_at"),
                    ("check_rejects", "received_at"),
                ):
                    connection.run(
                        f"DELETE FROM {quoted}.{table} WHERE {column} < :cutoff", cutoff=cutoff
                    )
            if settings.rollup_retention_days:
                connection.run(
                    f"DELETE FROM {quoted}.checks_hourly WHERE hour < :cutoff",
                    cutoff=now - timedelta(days=settings.rollup_retention_days),
                )
    except pg8000.exceptions.DatabaseError as error:
        if sqlstate(error) == _LOCK_NOT_AVAILABLE:
            logger.warning("retention skipped: tables busy, will try again later")
            return []
        raise
    if dropped:
        logger.info("retention dropped partitions %s", ", ".join(dropped))
    return dropped
