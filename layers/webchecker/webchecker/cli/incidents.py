"""`webchecker incidents`: incidents newest first, with their reason and duration.

--open shows the open ones only; --since (default 7d) keeps those open at some time in
the period. Reads ``DATABASE_URL`` (or the ``DB_*`` variables), else the local stack's
embedded database.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from webchecker.alert.formatting import duration_text, reason
from webchecker.cli.db import add_database_arguments, migrated_database
from webchecker.exceptions import ConfigurationError
from webchecker.report import parse_since
from webchecker.store.maintenance import IncidentRecord, list_incidents


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "incidents",
        help="incidents: when each site went down, why, and for how long",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--open", action="store_true", help="only incidents still open")
    parser.add_argument("--site", metavar="ID", help="only this site")
    parser.add_argument(
        "--since", default="7d", help="a duration (24h, 7d) or an RFC 3339 timestamp (default 7d)"
    )
    parser.add_argument("--json", action="store_true", help="a JSON list of incidents")
    add_database_arguments(parser)
    parser.set_defaults(handler=_incidents)


def _incidents(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    try:
        since = parse_since(args.since, now=now)
    except ValueError as error:
        raise ConfigurationError(f"--since {error}") from None
    with migrated_database(args) as database:
        incidents = list_incidents(database, open_only=args.open, site_id=args.site, since=since)
    if args.json:
        print(json.dumps([incident.to_json() for incident in incidents], indent=2))
        return 0
    if not incidents:
        print("no incidents")
    for incident in incidents:
        print(_line(incident, now))
    return 0


def _line(incident: IncidentRecord, now: datetime) -> str:
    opened = incident.opened_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    lasted = duration_text(incident.duration_seconds(now))
    state = "OPEN " if incident.resolved_at is None else "     "
    why = reason(incident.to_json())
    return f"{state}{opened}  {incident.site_id:<24} {lasted:>8}  {why}"
