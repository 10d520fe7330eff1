"""`webchecker report`: availability and latency per site, from the hourly rollups.

Per site: checks, availability %, p50/p95/p99 response time (estimated from merged
fixed-bucket histograms), the last check's time and status, and the latest failure in the
period. ``--json`` prints a list of objects for scripts. Reads ``DATABASE_URL`` (or the
``DB_*`` variables), else the local stack's embedded database in ``.webchecker/postgres``,
started for the command if ``webchecker local`` is not running.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from webchecker.cli.db import add_database_arguments, migrated_database
from webchecker.exceptions import ConfigurationError
from webchecker.report import build_report, format_table, parse_since


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="availability and latency per site",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--since",
        default="24h",
        help="period: a duration (30m, 24h, 7d, 2w) or an RFC 3339 timestamp (default 24h)",
    )
    parser.add_argument("--site", metavar="ID", help="only this site")
    parser.add_argument("--json", action="store_true", help="a JSON list of objects")
    add_database_arguments(parser)
    parser.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since)
    except ValueError as error:
        raise ConfigurationError(f"--since {error}") from None
    with migrated_database(args) as database:  # a fresh database reports "no checks"
        reports = build_report(database, since=since, site_id=args.site)
    if args.json:
        print(json.dumps([report.to_json() for report in reports], indent=2))
    else:
        print(format_table(reports))
    return 0
