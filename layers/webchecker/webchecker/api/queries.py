"""The API's reads (and the maintenance windows' writes) in PostgreSQL, as plain dicts.

Every list is keyset-paginated on its index order: checks on ``checks_site_time``
(site_id, checked_at DESC), incidents on ``incidents_site_opened`` / ``incidents_opened``.
A page asks for one row more than it returns, to know whether there is a next one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webchecker.results import format_timestamp
from webchecker.store.database import Database, quote_identifier

CHECK_COLUMNS = (
    "check_id", "schema", "site_id", "url", "region", "scheduled_at", "checked_at",
    "response_time_ms", "status_code", "ok", "error", "error_detail", "regex_matched",
    "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "tls_cert_expires_at",
)  # fmt: skip
INCIDENT_COLUMNS = (
    "incident_id", "site_id", "url", "tags", "opened_at", "resolved_at", "error",
    "error_detail", "status_code",
)  # fmt: skip
WINDOW_COLUMNS = ("window_id", "site_ids", "tags", "starts_at", "ends_at", "reason", "created_at")


@dataclass(frozen=True)
class Page:
    """Rows of one page and the position after its last row (None on the last page)."""

    rows: list[dict[str, Any]]
    after: tuple[datetime, str] | None


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def check_message(row: Sequence[Any]) -> dict[str, Any]:
    return {name: _json(value) for name, value in zip(CHECK_COLUMNS, row, strict=True)}


def incident(row: Sequence[Any]) -> dict[str, Any]:
    found = dict(zip(INCIDENT_COLUMNS, row, strict=True))
    opened, resolved = found["opened_at"], found["resolved_at"]
    shown = {name: _json(value) for name, value in found.items()}
    shown["tags"] = list(found["tags"] or [])
    shown["state"] = "open" if resolved is None else "resolved"
    shown["duration_seconds"] = None if resolved is None else (resolved - opened).total_seconds()
    return shown


def window(row: Sequence[Any]) -> dict[str, Any]:
    found = {name: _json(value) for name, value in zip(WINDOW_COLUMNS, row, strict=True)}
    found["id"] = found.pop("window_id")
    return found


class ResultsReader:
    """Queries of one schema; every method is one short read transaction."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._schema = quote_identifier(database.schema)

    def status(self, site_id: str, tags: Sequence[str]) -> dict[str, Any]:
        """The site's state row, its latest check, open incident and covering window."""
        schema = self._schema
        with self.database.transaction() as connection:
            state = connection.run(
                f"SELECT state, since, flapping FROM {schema}.site_state WHERE site_id = :site",
                site=site_id,
            )
            latest = connection.run(
                f"SELECT {', '.join(CHECK_COLUMNS)} FROM {schema}.checks WHERE site_id = :site"
                " ORDER BY checked_at DESC LIMIT 1",
                site=site_id,
            )
            open_incident = connection.run(
                f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM {schema}.incidents"
                " WHERE site_id = :site AND resolved_at IS NULL",
                site=site_id,
            )
            windows = connection.run(
                f"SELECT {', '.join(WINDOW_COLUMNS)} FROM {schema}.maintenance_windows"
                " WHERE starts_at <= now() AND ends_at > now()"
                " AND ((site_ids IS NULL AND tags IS NULL) OR :site = ANY(site_ids)"
                " OR tags && CAST(:tags AS text[]))"
                " ORDER BY starts_at LIMIT 1",
                site=site_id,
                tags=list(tags),
            )
        return {
            "state": state[0] if state else None,
            "last_check": check_message(latest[0]) if latest else None,
            "incident": incident(open_incident[0]) if open_incident else None,
            "window": window(windows[0]) if windows else None,
        }

    def checks(
        self,
        site_id: str,
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> Page:
        """Checks of one site, newest first, through the (site_id, checked_at) index."""
        conditions = ["site_id = :site"]
        params: dict[str, Any] = {"site": site_id, "n": limit + 1}
        if since is not None:
            conditions.append("checked_at >= :since")
            params["since"] = since
        if until is not None:
            conditions.append("checked_at < :until")
            params["until"] = until
        if after is not None:
            # the first condition is the index's range, the second breaks ties on check_id
            conditions.append("checked_at <= :after_at")
            conditions.append("(checked_at, check_id) < (:after_at, CAST(:after_id AS uuid))")
            params["after_at"], params["after_id"] = after
        sql = (
            f"SELECT {', '.join(CHECK_COLUMNS)} FROM {self._schema}.checks"
            f" WHERE {' AND '.join(conditions)}"
            " ORDER BY checked_at DESC, check_id DESC LIMIT :n"
        )
        with self.database.transaction() as connection:
            rows = connection.run(sql, **params)
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more else None
        return Page(
            [check_message(row) for row in rows],
            None if last is None else (last[CHECK_COLUMNS.index("checked_at")], str(last[0])),
        )

    def explain_checks(self, site_id: str, *, limit: int) -> list[str]:
        """EXPLAIN ANALYZE of the first page of ``checks`` (the benchmark shows it)."""
        with self.database.transaction() as connection:
            rows = connection.run(
                f"EXPLAIN (ANALYZE, BUFFERS) SELECT {', '.join(CHECK_COLUMNS)}"
                f" FROM {self._schema}.checks WHERE site_id = :site"
                " ORDER BY checked_at DESC, check_id DESC LIMIT :n",
                site=site_id,
                n=limit + 1,
            )
        return [str(row[0]) for row in rows]

    def incidents(
        self,
        *,
        site_id: str | None,
        state: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> Page:
        """Incidents, newest first; optionally of one site, open or resolved ones only."""
        conditions = ["true"]
        params: dict[str, Any] = {"n": limit + 1}
        if site_id is not None:
            conditions.append("site_id = :site")
            params["site"] = site_id
        if state == "open":
            conditions.append("resolved_at IS NULL")
        elif state == "resolved":
            conditions.append("resolved_at IS NOT NULL")
        if after is not None:
            conditions.append("opened_at <= :after_at")
            conditions.append("(opened_at, incident_id) < (:after_at, CAST(:after_id AS uuid))")
            params["after_at"], params["after_id"] = after
        sql = (
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM {self._schema}.incidents"
            f" WHERE {' AND '.join(conditions)}"
            " ORDER BY opened_at DESC, incident_id DESC LIMIT :n"
        )
        with self.database.transaction() as connection:
            rows = connection.run(sql, **params)
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more else None
        return Page(
            [incident(row) for row in rows],
            None if last is None else (last[INCIDENT_COLUMNS.index("opened_at")], str(last[0])),
        )

    # -- maintenance windows -------------------------------------------------------------

    def windows(self, *, include_ended: bool) -> list[dict[str, Any]]:
        condition = "true" if include_ended else "ends_at > now()"
        with self.database.transaction() as connection:
            rows = connection.run(
                f"SELECT {', '.join(WINDOW_COLUMNS)} FROM {self._schema}.maintenance_windows"
                f" WHERE {condition} ORDER BY starts_at, window_id LIMIT 1000"
            )
        return [window(row) for row in rows]

    def add_window(
        self,
        *,
        site_ids: Sequence[str] | None,
        tags: Sequence[str] | None,
        starts_at: datetime,
        ends_at: datetime,
        reason: str,
    ) -> dict[str, Any]:
        with self.database.transaction() as connection:
            rows = connection.run(
                f"INSERT INTO {self._schema}.maintenance_windows"
                " (window_id, site_ids, tags, starts_at, ends_at, reason)"
                " VALUES (:id, CAST(:site_ids AS text[]), CAST(:tags AS text[]),"
                " :starts_at, :ends_at, :reason)"
                f" RETURNING {', '.join(WINDOW_COLUMNS)}",
                id=str(uuid.uuid4()),
                site_ids=None if site_ids is None else list(site_ids),
                tags=None if tags is None else list(tags),
                starts_at=starts_at,
                ends_at=ends_at,
                reason=reason,
            )
        return window(rows[0])

    def delete_window(self, window_id: str) -> bool:
        with self.database.transaction() as connection:
            rows = connection.run(
                f"DELETE FROM {self._schema}.maintenance_windows WHERE window_id = CAST(:id AS uuid)"
                " RETURNING window_id",
                id=window_id,
            )
        return bool(rows)
