"""`webchecker db`: the database schema (migrations, partitions, retention) and its URL.

Uses ``DATABASE_URL`` (or the ``DB_*`` variables) when set, else the embedded PostgreSQL of
the local stack in ``.webchecker/postgres`` (started for the command if it is not running).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from webchecker.exceptions import WebcheckerError
from webchecker.local.embedded.postgres import DEFAULT_DATA_DIR, EmbeddedPostgres, database_url
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import RetentionSettings, apply_retention, latest_version, migrate


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"embedded PostgreSQL data directory when DATABASE_URL is not set "
        f"(default: {DEFAULT_DATA_DIR})",
    )


def database_settings(args: argparse.Namespace) -> DatabaseSettings:
    """``DATABASE_URL``/``DB_*`` when set, else the embedded server in ``--data-dir``."""
    if os.environ.get("DATABASE_URL") or os.environ.get("DB_HOST"):
        return DatabaseSettings.from_env()
    return DatabaseSettings.from_url(
        database_url(args.data_dir), schema=os.environ.get("DB_SCHEMA") or "webchecker"
    )


@contextmanager
def migrated_database(args: argparse.Namespace) -> Iterator[Database]:
    """The database of ``database_settings(args)``, migrated first: for the commands that
    read or edit it, so that a fresh database reads as empty rather than failing."""
    with Database(database_settings(args)) as database:
        migrate(database)
        yield database


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "db",
        help="database schema: migrate, retention, URL",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    commands = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")

    migrate_parser = commands.add_parser(
        "migrate",
        help="create the database, schema, tables and partitions; apply retention",
    )
    add_database_arguments(migrate_parser)
    migrate_parser.add_argument(
        "--no-retention", action="store_true", help="do not drop partitions past RETENTION_DAYS"
    )
    migrate_parser.set_defaults(handler=_migrate)

    url_parser = commands.add_parser(
        "url", help="print the database URL (DATABASE_URL, or the running local server's)"
    )
    add_database_arguments(url_parser)
    url_parser.set_defaults(handler=_url)


def _migrate(args: argparse.Namespace) -> int:
    settings = database_settings(args)
    with Database(settings) as database:
        applied = migrate(database)
        dropped = (
            [] if args.no_retention else apply_retention(database, RetentionSettings.from_env())
        )
    where = f"{settings.database} schema {settings.schema}"
    if applied:
        print(f"{where}: applied migrations {', '.join(map(str, applied))}")
    else:
        print(f"{where}: up to date (version {latest_version()})")
    if dropped:
        print(f"retention: dropped {', '.join(dropped)}")
    return 0


def _url(args: argparse.Namespace) -> int:
    url = os.environ.get("DATABASE_URL")
    if not url:
        server = EmbeddedPostgres(args.data_dir)
        if not server.running:
            raise WebcheckerError(
                f"no DATABASE_URL and no local server running in {args.data_dir} "
                "(start one with `webchecker local`)"
            )
        url = server.url()
    print(url)
    return 0
