"""`webchecker maintenance`: windows in which failed checks open no incident and send nothing.

A window covers every site, the sites given with --site, or those with a --tag. Checks are
still stored during a window. Reads ``DATABASE_URL`` (or the ``DB_*`` variables), else the
local stack's embedded database.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from webchecker.cli.db import add_database_arguments, migrated_database
from webchecker.exceptions import ConfigurationError
from webchecker.report import parse_since
from webchecker.store.maintenance import add_window, list_windows, new_window, remove_window


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "maintenance",
        help="maintenance windows: add, list, remove",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    commands = parser.add_subparsers(dest="maintenance_command", required=True, metavar="ACTION")

    add = commands.add_parser("add", help="add a window (every site unless --site/--tag)")
    add.add_argument("--site", action="append", metavar="ID", help="a site id (repeatable)")
    add.add_argument("--tag", action="append", metavar="TAG", help="a tag (repeatable)")
    add.add_argument("--start", default="now", help="RFC 3339 timestamp or 'now' (default)")
    end = add.add_mutually_exclusive_group(required=True)
    end.add_argument("--end", help="RFC 3339 timestamp")
    end.add_argument("--duration", help="from the start: 30m, 2h, 1d")
    add.add_argument("--reason", default="", help="shown with the window")
    add.add_argument("--json", action="store_true", help="print the window as JSON")
    add_database_arguments(add)
    add.set_defaults(handler=_add)

    listing = commands.add_parser("list", help="current and future windows")
    listing.add_argument("--all", action="store_true", help="past windows too")
    listing.add_argument("--json", action="store_true", help="a JSON list of windows")
    add_database_arguments(listing)
    listing.set_defaults(handler=_list)

    remove = commands.add_parser("remove", help="remove a window by id")
    remove.add_argument("id", help="the window id (from list)")
    add_database_arguments(remove)
    remove.set_defaults(handler=_remove)


def _moment(option: str, text: str, now: datetime) -> datetime:
    if text.strip().lower() == "now":
        return now
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(f"{option} {text!r}: expected an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise ConfigurationError(f"{option} {text!r}: needs a UTC offset (Z or +hh:mm)")
    return moment.astimezone(UTC)


def _add(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    starts = _moment("--start", args.start, now)
    if args.duration is not None:
        try:
            ends = starts + (now - parse_since(args.duration, now=now))
        except ValueError as error:
            raise ConfigurationError(f"--duration {error}") from None
    else:
        ends = _moment("--end", args.end, now)
    window = new_window(
        starts_at=starts, ends_at=ends, site_ids=args.site, tags=args.tag, reason=args.reason
    )
    with migrated_database(args) as database:
        add_window(database, window)
    if args.json:
        print(json.dumps(window.to_json(), indent=2))
    else:
        print(f"added {window.window_id}: {window.scope}, {_span(window.to_json())}")
    return 0


def _span(window: dict[str, Any]) -> str:
    return f"{window['starts_at']} .. {window['ends_at']}"


def _list(args: argparse.Namespace) -> int:
    with migrated_database(args) as database:
        windows = list_windows(database, ending_after=None if args.all else datetime.now(UTC))
    if args.json:
        print(json.dumps([window.to_json() for window in windows], indent=2))
        return 0
    if not windows:
        print("no maintenance windows")
    for window in windows:
        reason = f"  ({window.reason})" if window.reason else ""
        print(f"{window.window_id}  {_span(window.to_json())}  {window.scope}{reason}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    with migrated_database(args) as database:
        if not remove_window(database, args.id):
            raise ConfigurationError(f"no maintenance window {args.id}")
    print(f"removed {args.id}")
    return 0
