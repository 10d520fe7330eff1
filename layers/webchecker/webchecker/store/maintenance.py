"""Maintenance windows and the incident log in PostgreSQL (read by the CLI and the API).

A window covers every site (no ids, no tags), the listed site ids, or the sites with one
of the listed tags, from ``starts_at`` to ``ends_at``. The writer reads the windows that
overlap each batch (store/incidents.py): a failed check inside one does not count
towards opening an incident.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webchecker.exceptions import ConfigurationError
from webchecker.results import format_timestamp
from webchecker.store.database import Database, quote_identifier

MAX_REASON = 500
MAX_ENTRIES = 100
_SITE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_TAG = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")


@dataclass(frozen=True, kw_only=True)
class Window:
    window_id: str
    starts_at: datetime
    ends_at: datetime
    site_ids: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ConfigurationError("window: start and end need a UTC offset")
        if self.ends_at <= self.starts_at:
            raise ConfigurationError("window: the end must be after the start")
        for name, values, pattern in (
            ("site id", self.site_ids, _SITE_ID),
            ("tag", self.tags, _TAG),
        ):
            if values is None:
                continue
            if not values or len(values) > MAX_ENTRIES:
                raise ConfigurationError(f"window: 1 to {MAX_ENTRIES} {name}s")
            for value in values:
                if not isinstance(value, str) or not pattern.fullmatch(value):
                    raise ConfigurationError(f"window: invalid {name} {value!r}")
        if len(self.reason) > MAX_REASON or not self.reason.isprintable():
            raise ConfigurationError(
                f"window: reason must be printable text of at most {MAX_REASON} characters"
            )

    @property
    def scope(self) -> str:
        if self.site_ids is None and self.tags is None:
            return "every site"
        parts = []
        if self.site_ids:
            parts.append("sites " + ", ".join(self.site_ids))
        if self.tags:
            parts.append("tags " + ", ".join(self.tags))
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.window_id,
            "site_ids": None if self.site_ids is None else list(self.site_ids),
            "tags": None if self.tags is None else list(self.tags),
            "starts_at": format_timestamp(self.starts_at),
            "ends_at": format_timestamp(self.ends_at),
            "reason": self.reason,
        }


def new_window(
    *,
    starts_at: datetime,
    ends_at: datetime,
    site_ids: list[str] | None = None,
    tags: list[str] | None = None,
    reason: str = "",
) -> Window:
    return Window(
        window_id=str(uuid.uuid4()),
        starts_at=starts_at,
        ends_at=ends_at,
        site_ids=tuple(site_ids) if site_ids else None,
        tags=tuple(tags) if tags else None,
        reason=reason,
    )


def add_window(database: Database, window: Window) -> None:
    table = f"{quote_identifier(database.schema)}.maintenance_windows"
    with database.transaction() as connection:
        connection.run(
            f"INSERT INTO {table} (window_id, site_ids, tags, starts_at, ends_at, reason)"
            " VALUES (CAST(:id AS uuid), :sites, :tags, :starts, :ends, :reason)",
            id=window.window_id,
            sites=None if window.site_ids is None else list(window.site_ids),
            tags=None if window.tags is None else list(window.tags),
            starts=window.starts_at,
            ends=window.ends_at,
            reason=window.reason,
        )


def list_windows(database: Database, *, ending_after: datetime | None = None) -> list[Window]:
    """Windows by start (those ending after ``ending_after`` when given)."""
    table = f"{quote_identifier(database.schema)}.maintenance_windows"
    with database.transaction() as connection:
        rows = connection.run(
            f"SELECT window_id::text, starts_at, ends_at, site_ids, tags, reason FROM {table}"
            " WHERE CAST(:after AS timestamptz) IS NULL OR ends_at > :after"
            " ORDER BY starts_at, window_id",
            after=ending_after,
        )
    return [
        Window(
            window_id=window_id,
            starts_at=starts,
            ends_at=ends,
            site_ids=None if sites is None else tuple(sites),
            tags=None if tags is None else tuple(tags),
            reason=reason,
        )
        for window_id, starts, ends, sites, tags, reason in rows
    ]


def remove_window(database: Database, window_id: str) -> bool:
    """Deletes a window; False when there is none with that id."""
    try:
        key = str(uuid.UUID(window_id))
    except ValueError:
        raise ConfigurationError(f"window id {window_id!r}: not a UUID") from None
    table = f"{quote_identifier(database.schema)}.maintenance_windows"
    with database.transaction() as connection:
        connection.run(f"DELETE FROM {table} WHERE window_id = CAST(:id AS uuid)", id=key)
        return bool(connection.row_count)


def site_states(database: Database) -> dict[str, tuple[str, datetime | None]]:
    """Each site's state and since when, as the writer left it."""
    table = f"{quote_identifier(database.schema)}.site_state"
    with database.transaction() as connection:
        exists = connection.run("SELECT to_regclass(:table) IS NOT NULL", table=table)[0][0]
        if not exists:  # no batch written yet
            return {}
        rows = connection.run(f"SELECT site_id, state, since FROM {table}")
    return {site_id: (state, since) for site_id, state, since in rows}


# -- the incident log ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class IncidentRecord:
    incident_id: str
    site_id: str
    url: str
    tags: tuple[str, ...]
    opened_at: datetime
    resolved_at: datetime | None
    error: str | None
    error_detail: str | None
    status_code: int | None

    def duration_seconds(self, now: datetime) -> float:
        return ((self.resolved_at or now) - self.opened_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "site_id": self.site_id,
            "url": self.url,
            "tags": list(self.tags),
            "opened_at": format_timestamp(self.opened_at),
            "resolved_at": None if self.resolved_at is None else format_timestamp(self.resolved_at),
            "duration_seconds": (
                None
                if self.resolved_at is None
                else round((self.resolved_at - self.opened_at).total_seconds(), 3)
            ),
            "error": self.error,
            "error_detail": self.error_detail,
            "status_code": self.status_code,
        }


def list_incidents(
    database: Database,
    *,
    open_only: bool = False,
    site_id: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[IncidentRecord]:
    """Incidents newest first: open ones, or those open at some time after ``since``."""
    table = f"{quote_identifier(database.schema)}.incidents"
    with database.transaction() as connection:
        rows = connection.run(
            "SELECT incident_id::text, site_id, url, tags, opened_at, resolved_at, error,"
            f" error_detail, status_code FROM {table}"
            " WHERE (NOT :open OR resolved_at IS NULL)"
            " AND (CAST(:site AS text) IS NULL OR site_id = :site)"
            " AND (CAST(:since AS timestamptz) IS NULL OR resolved_at IS NULL"
            "      OR resolved_at >= :since)"
            " ORDER BY opened_at DESC, incident_id LIMIT :limit",
            open=open_only,
            site=site_id,
            since=since,
            limit=limit,
        )
    return [
        IncidentRecord(
            incident_id=row[0],
            site_id=row[1],
            url=row[2],
            tags=tuple(row[3] or ()),
            opened_at=row[4],
            resolved_at=row[5],
            error=row[6],
            error_detail=row[7],
            status_code=row[8],
        )
        for row in rows
    ]
