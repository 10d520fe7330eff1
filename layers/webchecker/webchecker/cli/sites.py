"""`webchecker sites`: list and edit the watched sites in Parameter Store.

Works against AWS, or the local stack when ``AWS_ENDPOINT_URL`` is set (boto3 reads it).
Every write is validated with the scheduler's own site model before anything is written;
invalid input is refused with the field and the problem (exit code 2) and Parameter Store
is left as it was. New sites get one parameter each (``SITES_PATH/<id>``), so concurrent
edits of different sites never touch the same parameter.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from webchecker.cli.db import add_database_arguments, database_settings
from webchecker.exceptions import SiteError
from webchecker.schedule import packing
from webchecker.schedule.catalog import (
    SiteEntry,
    SiteStore,
    SiteStoreSettings,
    StoredParameter,
    encode_value,
    id_from_url,
)
from webchecker.sites import Site, SiteCatalog, load_sites
from webchecker.store.database import Database
from webchecker.store.maintenance import site_states

JsonObject = dict[str, Any]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "sites",
        help="list and edit the watched sites (SSM Parameter Store)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--path",
        help="parameter path holding the sites (default: $SITES_PATH or /webchecker/sites)",
    )
    commands = parser.add_subparsers(dest="sites_command", required=True, metavar="ACTION")

    listing = commands.add_parser("list", help="table of sites: id, url, interval, enabled")
    listing.add_argument(
        "--state",
        action="store_true",
        help="add each site's state (up/down since when) from the database",
    )
    add_database_arguments(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="one site as JSON, every default filled in")
    show.add_argument("id")
    show.set_defaults(handler=_show)

    add = commands.add_parser("add", help="add a site (its own parameter SITES_PATH/<id>)")
    add.add_argument("url")
    add.add_argument("--id", help="site id (default: derived from the URL's host)")
    add.add_argument("--interval", type=int, help="seconds between checks, multiple of 60")
    add.add_argument("--timeout", type=float, help="seconds, > 0 and less than the interval")
    add.add_argument("--method", help="HTTP method (default GET)")
    add.add_argument(
        "--header", action="append", default=[], metavar="NAME=VALUE", help="repeatable"
    )
    add.add_argument("--body", help="request body")
    add.add_argument(
        "--expected-status",
        action="append",
        metavar="CODES",
        help='codes or ranges, comma-separated or repeated: "200-299,301"',
    )
    add.add_argument(
        "--regex", help="RE2 regular expression searched in the response body (no lookaround)"
    )
    add.add_argument("--no-follow-redirects", action="store_true")
    add.add_argument("--no-verify-tls", action="store_true")
    add.add_argument("--disabled", action="store_true", help="add it without checking it yet")
    add.add_argument(
        "--tag",
        action="append",
        metavar="TAGS",
        help="tags for alert routing and reports, comma-separated or repeated (at most 10)",
    )
    add.add_argument(
        "--failure-threshold",
        type=int,
        metavar="N",
        help="consecutive failed checks that open an incident, 1-10 (default 2)",
    )
    add.add_argument(
        "--success-threshold",
        type=int,
        metavar="N",
        help="consecutive passed checks that resolve it, 1-10 (default 2)",
    )
    add.add_argument("--no-alerts", action="store_true", help="record incidents but notify nobody")
    _secure_flag(add)
    add.set_defaults(handler=_add)

    set_ = commands.add_parser(
        "set",
        help="change fields: key=value (JSON or text); key= restores the default",
    )
    set_.add_argument("id")
    set_.add_argument("changes", nargs="+", metavar="KEY=VALUE")
    _secure_flag(set_)
    set_.set_defaults(handler=_set)

    for name, enabled in (("enable", True), ("disable", False)):
        toggle = commands.add_parser(name, help=f"{name} a site")
        toggle.add_argument("id")
        toggle.set_defaults(handler=_toggle(enabled))

    remove = commands.add_parser("remove", help="remove a site")
    remove.add_argument("id")
    remove.set_defaults(handler=_remove)

    import_ = commands.add_parser(
        "import", help="add or replace sites from a JSON or YAML list (all validated first)"
    )
    import_.add_argument("file", help="path, or - for standard input")
    _secure_flag(import_)
    import_.add_argument(
        "--packed",
        action="store_true",
        help="write new sites into arrays of up to 4 KB (as `pack` does), not one parameter each",
    )
    import_.set_defaults(handler=_import)

    export = commands.add_parser("export", help="every valid site, as a list import accepts")
    export.add_argument("--format", choices=("json", "yaml"), default="json")
    export.set_defaults(handler=_export)

    pack = commands.add_parser(
        "pack",
        help="fold one-site parameters into arrays of up to 4 KB (for thousands of sites)",
    )
    pack.add_argument("--dry-run", action="store_true", help="only say what would be done")
    pack.set_defaults(handler=_pack)


def _secure_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secure",
        action="store_true",
        help="store as SecureString (for secret header values); never downgraded later",
    )


# -- context -------------------------------------------------------------------------------


@dataclass
class _Context:
    store: SiteStore
    catalog: SiteCatalog
    where: dict[str, str]  # site id -> parameter name

    def site(self, site_id: str) -> Site:
        for site in self.catalog.sites:
            if site.id == site_id:
                return site
        raise SiteError(f"no site {site_id!r} under {self.store.settings.path}", field="id")


def _settings(args: argparse.Namespace) -> SiteStoreSettings:
    """The environment's settings (read, and so checked, even with ``--path``), or the
    defaults with ``--path`` when it is given."""
    settings = SiteStoreSettings.from_env()
    if args.path:
        settings = SiteStoreSettings(path=args.path.rstrip("/") or "/")
    return settings


def _context(args: argparse.Namespace) -> _Context:
    settings = _settings(args)
    store = SiteStore(settings)
    catalog, where = store.locate()
    return _Context(store=store, catalog=catalog, where=where)


# -- reading -------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    context = _context(args)
    states = _states(args) if getattr(args, "state", False) else None
    rows: list[tuple[str, ...]] = [("ID", "URL", "INTERVAL", "ENABLED", "PARAMETER")]
    if states is not None:
        rows[0] = (*rows[0], "STATE")
    for site in sorted(context.catalog.sites, key=lambda s: s.id):
        enabled = "yes" if site.enabled else "no"
        row: tuple[str, ...] = (
            site.id, site.url, str(site.interval), enabled, context.where[site.id]
        )  # fmt: skip
        if states is not None:
            state, since = states.get(site.id, ("unknown", None))
            when = "" if since is None else f" since {since:%Y-%m-%d %H:%M:%S}"
            row = (*row, f"{state}{when}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    _warn_invalid(context.catalog)
    return 0


def _show(args: argparse.Namespace) -> int:
    context = _context(args)
    print(json.dumps(context.site(args.id).to_dict(), indent=2, ensure_ascii=False))
    print(f"parameter: {context.where[args.id]}", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    context = _context(args)
    sites = [site.to_dict() for site in sorted(context.catalog.sites, key=lambda s: s.id)]
    if args.format == "yaml":
        print(yaml.safe_dump(sites, sort_keys=False, allow_unicode=True), end="")
    else:
        print(json.dumps(sites, indent=2, ensure_ascii=False))
    _warn_invalid(context.catalog)
    return 0


def _warn_invalid(catalog: SiteCatalog) -> None:
    if catalog.invalid:
        count = len(catalog.invalid)
        print(f"{count} invalid {'entry' if count == 1 else 'entries'} skipped:", file=sys.stderr)
        for entry in catalog.invalid:
            print(f"  {entry}", file=sys.stderr)


def _states(args: argparse.Namespace) -> dict[str, tuple[str, datetime | None]]:
    """Site states from the database (``DATABASE_URL``/``DB_*``, else the local stack's)."""
    with Database(database_settings(args)) as database:
        return site_states(database)


# -- writing -------------------------------------------------------------------------------


def _add(args: argparse.Namespace) -> int:
    context = _context(args)
    raw: JsonObject = {"id": args.id or _id_from_url(args.url), "url": args.url}
    options: Mapping[str, Any] = {
        "interval": args.interval,
        "timeout": args.timeout,
        "method": args.method,
        "body": args.body,
        "regex": args.regex,
        "failure_threshold": args.failure_threshold,
        "success_threshold": args.success_threshold,
    }
    raw.update({key: value for key, value in options.items() if value is not None})
    if args.header:
        raw["headers"] = dict(_key_value(item, "headers") for item in args.header)
    if args.expected_status:
        raw["expected_status"] = _status_list(args.expected_status)
    if args.no_follow_redirects:
        raw["follow_redirects"] = False
    if args.no_verify_tls:
        raw["verify_tls"] = False
    if args.disabled:
        raw["enabled"] = False
    if args.tag:
        raw["tags"] = _tag_list(args.tag)
    if args.no_alerts:
        raw["alerts"] = False
    site = Site.from_dict(raw)
    _refuse_taken(context, site.id)
    context.store.add(raw, secure=args.secure)
    print(f"added {site.id} ({context.store.parameter_name(site.id)})")
    return 0


def _set(args: argparse.Namespace) -> int:
    changes: JsonObject = {}
    for item in args.changes:
        key, text = _key_value(item, None)
        if key not in Site.__dataclass_fields__:
            allowed = ", ".join(Site.__dataclass_fields__)
            raise SiteError(f"unknown key {key!r} (allowed: {allowed})")
        if key == "id":
            raise SiteError(
                "cannot be changed: add the site under the new id and remove this one", field="id"
            )
        value = _UNSET if text == "" else _parse_value(text)
        if key == "tags" and isinstance(value, str):  # tags=prod,eu as well as tags=["prod"]
            value = _tag_list([value])
        changes[key] = value

    def change(raw: JsonObject) -> None:
        for key, value in changes.items():
            if value is _UNSET:
                raw.pop(key, None)
            else:
                raw[key] = value

    return _edit(args, change, f"updated {args.id}", secure=args.secure)


def _toggle(enabled: bool) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        def change(raw: JsonObject) -> None:
            raw["enabled"] = enabled

        return _edit(args, change, f"{'enabled' if enabled else 'disabled'} {args.id}")

    return handler


def _remove(args: argparse.Namespace) -> int:
    context = _context(args)
    entry = _stored(context, args.id)
    context.store.remove(entry)
    print(f"removed {args.id} ({entry.parameter.name})")
    return 0


def _edit(
    args: argparse.Namespace,
    change: Callable[[JsonObject], None],
    done: str,
    *,
    secure: bool = False,
) -> int:
    """Read-modify-write of the one entry holding ``args.id``, validated before writing."""
    context = _context(args)
    entry = _stored(context, args.id)
    raw = entry.raw
    change(raw)
    context.store.replace(entry, raw, secure=secure)  # validated first: SiteError names the field
    print(f"{done} ({entry.parameter.name})")
    return 0


def _stored(context: _Context, site_id: str) -> SiteEntry:
    """The stored entry of ``site_id`` (SiteError when there is no such site)."""
    context.site(site_id)
    return context.store.entry(site_id, context.where[site_id])


def _import(args: argparse.Namespace) -> int:
    entries = _read_list(args.file)
    errors: list[str] = []
    sites: list[Site] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and "id" not in entry:
            errors.append(f"[{index}] id: is required")
            continue
        try:
            site = Site.from_dict(entry)
        except SiteError as error:
            errors.append(f"[{index}] {error}")
            continue
        if site.id in seen:
            errors.append(f"[{index}] id: duplicate {site.id!r}, already at [{seen[site.id]}]")
            continue
        seen[site.id] = index
        sites.append(site)
    if errors:
        raise SiteError(
            f"{args.file}: {len(errors)} invalid {'entry' if len(errors) == 1 else 'entries'},"
            " nothing written:\n  " + "\n  ".join(errors)
        )

    context = _context(args)
    plans: list[tuple[str, Any, StoredParameter | None]] = []
    for site in sites:
        name = context.store.parameter_name(site.id)
        holder = context.where.get(site.id)
        if holder is not None and holder != name:
            errors.append(
                f"[{seen[site.id]}] id: {site.id!r} already exists in {holder}; "
                "edit it there or remove it first"
            )
            continue
        current = context.store.get(name)
        others = _other_sites(current, site.id)
        if others:
            errors.append(
                f"[{seen[site.id]}] id: {name} also holds {', '.join(others)}; "
                "replacing it would remove them"
            )
            continue
        plans.append((name, entries[seen[site.id]], current))
    if errors:
        raise SiteError(f"{args.file}: nothing written:\n  " + "\n  ".join(errors))

    created = updated = unchanged = 0
    if args.packed and not args.secure:
        # New sites go straight into 4 KB arrays (webchecker.schedule.packing): 100,000 of
        # them would not fit the standard tier's 10,000 parameters one by one.
        fresh = [(name, raw) for name, raw, current in plans if current is None]
        plans = [plan for plan in plans if plan[2] is not None]
        listing = {holder: packing.StoredValue(value=None) for holder in context.where.values()}
        listing.update({name: packing.StoredValue(value=encode_value(raw)) for name, raw in fresh})
        packed: set[str] = set()
        for pack in packing.plan_packs(listing, context.store.settings.path).packs:
            context.store.create(pack.name, pack.value, secure=False)
            created += len(pack.site_ids)
            packed.update(pack.sources)
        plans.extend((name, raw, None) for name, raw in fresh if name not in packed)  # too large
    for name, raw, current in plans:
        value = encode_value(raw)
        if current is None:
            context.store.create(name, value, secure=args.secure)
            created += 1
        elif current.value == value and (current.secure or not args.secure):
            unchanged += 1
        else:
            context.store.update(current, value, secure=args.secure or current.secure)
            updated += 1
    print(
        f"imported {created + updated + unchanged} sites: {created} added, {updated} updated, "
        f"{unchanged} unchanged"
    )
    return 0


def _pack(args: argparse.Namespace) -> int:
    """Packs single-site parameters (see ``webchecker.schedule.packing``)."""
    settings = _settings(args)
    store = SiteStore(settings)
    listing = packing.read_listing(store.client, settings.path)
    plan = packing.plan_packs(listing, settings.path)
    for name, reason in plan.kept:
        print(f"kept on its own: {name} ({reason})", file=sys.stderr)
    sources = sum(len(pack.sources) for pack in plan.packs)
    if args.dry_run:
        print(f"would pack {sources} parameters into {len(plan.packs)} (dry run)")
        return 0
    outcome = packing.apply_plan(store, plan, listing)
    for name in outcome.conflicts:
        print(f"changed while packing, left as it is: {name}", file=sys.stderr)
    print(f"packed {outcome.packed} parameters into {outcome.packs}")
    return 0


# -- helpers -------------------------------------------------------------------------------


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _key_value(item: str, field: str | None) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise SiteError(f"{item!r} is not KEY=VALUE", field=field)
    return key.strip(), value


def _parse_value(text: str) -> Any:
    """JSON when it parses (numbers, true/false, lists, objects), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _status_list(values: Sequence[str]) -> list[int | str]:
    codes: list[int | str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            codes.append(int(part) if part.isdigit() else part)
    return codes


def _tag_list(values: Sequence[str]) -> list[str]:
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


def _id_from_url(url: str) -> str:
    try:
        return id_from_url(url)
    except SiteError:
        raise SiteError(f"cannot derive an id from {url!r}; pass --id", field="id") from None


def _other_sites(current: StoredParameter | None, site_id: str) -> list[str]:
    """Ids of the valid sites in ``current`` other than ``site_id`` (an array parameter)."""
    if current is None:
        return []
    held = load_sites({current.name: current.value}).sites
    return sorted(site.id for site in held if site.id != site_id)


def _refuse_taken(context: _Context, site_id: str) -> None:
    holder = context.where.get(site_id)
    if holder is not None:
        raise SiteError(f"{site_id!r} already exists in {holder}; pick another --id", field="id")


def _read_list(file: str) -> list[Any]:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as error:
        raise SiteError(f"{file}: cannot read: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise SiteError(f"{file}: neither JSON nor YAML: {error}") from None
        except (ValueError, RecursionError) as error:  # e.g. an integer of 5,000 digits
            raise SiteError(f"{file}: not readable as YAML: {str(error)[:200]}") from None
    if not isinstance(data, list):
        raise SiteError(f"{file}: expected a list of site objects, got {type(data).__name__}")
    return data
