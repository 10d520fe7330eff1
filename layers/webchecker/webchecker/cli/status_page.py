"""`webchecker status-page`: render the status page into a directory.

Writes index.html (one self-contained page), status.json and badges/<site>.svg from
PostgreSQL, exactly as the scheduled statuspage function writes them to S3. Reads
``DATABASE_URL`` (or the ``DB_*`` variables), else the local stack's embedded database;
``STATUS_PAGE_SITES``, ``STATUS_PAGE_TAGS`` and ``STATUS_PAGE_TITLE`` choose what it shows.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from webchecker.cli.db import add_database_arguments, database_settings
from webchecker.page.publish import DirectoryPublisher
from webchecker.page.settings import PageSettings
from webchecker.page.statuspage import StatusPage
from webchecker.store.database import Database


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "status-page",
        help="render the status page (index.html, status.json, badges) into a directory",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="directory to write into"
    )
    add_database_arguments(parser)
    parser.set_defaults(handler=_status_page)


def _status_page(args: argparse.Namespace) -> int:
    settings = PageSettings.from_env()  # bad selection fails before connecting
    with Database(database_settings(args)) as database:
        page = StatusPage(settings, database, DirectoryPublisher(args.out))
        summary = page.publish()
    print(
        f"{args.out / 'index.html'}: {summary['sites']} sites, {summary['files']} files, "
        f"{summary['bytes'] / 1024:.1f} KiB"
    )
    return 0
