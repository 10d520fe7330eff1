"""The API's reads (and the maintenance windows' writes) in PostgreSQL, as plain dicts.

Every list is keyset-paginated on its index order: checks on ``checks_site_time``
(site_id, checked_at DESC), incidents on ``incidents_site_opened`` / ``incidents_opened``.
A page asks for one row more than it returns, to know whether there is a next one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webchecker.exceptions import StoreUnavailable
from webchecker.results import format_timestamp
from webchecker.store.database import Database, is_unavailable, quote_identifier

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
_TIMESTAMPS = {"scheduled_at", "checked_at", "tls_cert_expires_at"}


def _rfc3339(column: str) -> str:
    """SQL giving ``column`` as RFC 3339 text in UTC with milliseconds, as the checker
    writes them: pg8000 parses timestamptz with strptime (~60 us each, most of a page of
    checks), the server formats them in microseconds."""
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


#: The checks' columns as the API selects them: timestamps as text, the id as text.
CHECK_SELECT = ", ".join(
    # aliased: ORDER BY check_id must name the uuid column, not this text
    _rfc3339(name)
    if name in _TIMESTAMPS
    else "check_id::text AS check_id_text"
    if name == "check_id"
    else name
    for name in CHECK_COLUMNS
)
# the cursor's position: checked_at to the microsecond, as text
_CURSOR_AT = "to_char(checked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


@dataclass(frozen=True)
class Page:
    """Rows of one page and the position after its last row (None on the last page)."""

    rows: list[dict[str, Any]]
    after: tuple[datetime, str] | None

    @classmethod
    def of(
        cls,
        rows: Sequence[Sequence[Any]],
        limit: int,
        item: Callable[[Sequence[Any]], dict[str, Any]],
        position: Callable[[Sequence[Any]], tuple[datetime, str]],
    ) -> Page:
        """The page of a query that asked for ``limit + 1`` rows: the extra row only says
        that there is a next page, which starts after the last row shown."""
        shown = rows[:limit]
        more = len(rows) > limit
        return cls([item(row) for row in shown], position(shown[-1]) if more else None)


def _after(
    conditions: list[str],
    params: dict[str, Any],
    after: tuple[datetime, str] | None,
    *,
    at: str,
    key: str,
) -> None:
    """Adds the keyset condition "after this position" in the index order (``at`` DESC,
    ``key`` DESC): the first condition is the index's range, the second breaks ties."""
    if after is None:
        return
    conditions.append(f"{at} <= :after_at")
    conditions.append(f"({at}, {key}) < (:after_at, CAST(:after_id AS uuid))")
    params["after_at"], params["after_id"] = after


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def check_message(row: Sequence[Any]) -> dict[str, Any]:
    """A row of ``CHECK_SELECT`` (and maybe more columns after it) as the message."""
    return dict(zip(CHECK_COLUMNS, row, strict=False))


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
    """Queries of one schema. Each read is one statement (its own snapshot) sent without
    BEGIN/COMMIT: one round trip instead of three on a warm connection."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._schema = quote_identifier(database.schema)

    def _read(self, sql: str, **params: Any) -> list[list[Any]]:
        connection = self.database.connection()
        try:
            rows: list[list[Any]] = connection.run(sql, **params)
        except Exception as error:
            if is_unavailable(error):
                self.database.close()  # the next request reconnects
                raise StoreUnavailable(f"database unavailable: {error}") from error
            raise
        return rows

    def status(self, site_id: str, tags: Sequence[str]) -> dict[str, Any]:
        """The site's state row, its latest check, open incident and covering window."""
        schema = self._schema
        incident_columns = ", ".join(INCIDENT_COLUMNS)
        window_columns = ", ".join(WINDOW_COLUMNS)
        (row,) = self._read(
            "SELECT s.state, s.since, s.flapping, c.*, i.*, w.*"
            " FROM (SELECT CAST(:site AS text) AS site_id) AS q"
            f" LEFT JOIN {schema}.site_state s ON s.site_id = q.site_id"
            f" LEFT JOIN LATERAL (SELECT {CHECK_SELECT} FROM {schema}.checks"
            "   WHERE site_id = q.site_id ORDER BY checked_at DESC LIMIT 1) c ON true"
            f" LEFT JOIN LATERAL (SELECT {incident_columns} FROM {schema}.incidents"
            "   WHERE site_id = q.site_id AND resolved_at IS NULL LIMIT 1) i ON true"
            f" LEFT JOIN LATERAL (SELECT {window_columns} FROM {schema}.maintenance_windows"
            "   WHERE starts_at <= now() AND ends_at > now()"
            "   AND ((site_ids IS NULL AND tags IS NULL) OR q.site_id = ANY(site_ids)"
            "   OR tags && CAST(:tags AS text[])) ORDER BY starts_at LIMIT 1) w ON true",
            site=site_id,
            tags=list(tags),
        )
        state, check = row[:3], row[3 : 3 + len(CHECK_COLUMNS)]
        rest = row[3 + len(CHECK_COLUMNS) :]
        found_incident, found_window = rest[: len(INCIDENT_COLUMNS)], rest[len(INCIDENT_COLUMNS) :]
        return {
            "state": state if state[0] is not None else None,
            "last_check": check_message(check) if check[0] is not None else None,
            "incident": incident(found_incident) if found_incident[0] is not None else None,
            "window": window(found_window) if found_window[0] is not None else None,
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
        _after(conditions, params, after, at="checked_at", key="check_id")
        sql = (
            f"SELECT {CHECK_SELECT}, {_CURSOR_AT} FROM {self._schema}.checks"
            f" WHERE {' AND '.join(conditions)}"
            " ORDER BY checked_at DESC, check_id DESC LIMIT :n"
        )
        return Page.of(
            self._read(sql, **params),
            limit,
            check_message,
            lambda row: (datetime.fromisoformat(row[-1]), str(row[0])),
        )

    def explain_checks(self, site_id: str, *, limit: int) -> list[str]:
        """EXPLAIN ANALYZE of the first page of ``checks`` (the benchmark shows it)."""
        with self.database.transaction() as connection:
            rows = connection.run(
                f"EXPLAIN (ANALYZE, BUFFERS) SELECT {CHECK_SELECT}"
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
        _after(conditions, params, after, at="opened_at", key="incident_id")
        sql = (
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM {self._schema}.incidents"
            f" WHERE {' AND '.join(conditions)}"
            " ORDER BY opened_at DESC, incident_id DESC LIMIT :n"
        )
        opened_at = INCIDENT_COLUMNS.index("opened_at")
        return Page.of(
            self._read(sql, **params), limit, incident, lambda row: (row[opened_at], str(row[0]))
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
                f"DELETE FROM {self._schema}.maintenance_windows"
                " WHERE window_id = CAST(:id AS uuid) RETURNING window_id",
                id=window_id,
            )
        return bool(rows)
