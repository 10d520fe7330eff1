"""The live view of ``webchecker local``: each site's latest check and availability so far.

Read from PostgreSQL (what the writer stored, so the view shows the whole pipeline working),
for the sites currently in Parameter Store. On a terminal the table is redrawn in place;
otherwise (a pipe, a CI log) it is printed as plain lines once per tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

import pg8000.exceptions

from webchecker.sites import Site
from webchecker.store.database import Database, quote_identifier, sqlstate

_UNDEFINED_TABLE = "42P01"


@dataclass(frozen=True, kw_only=True)
class SiteStatus:
    """A site's latest stored check and its totals."""

    site_id: str
    url: str
    enabled: bool
    checks: int = 0
    passed: int = 0
    ok: bool | None = None
    status_code: int | None = None
    response_time_ms: float | None = None
    error: str | None = None
    checked_at: datetime | None = None

    @property
    def availability(self) -> float | None:
        return self.passed / self.checks if self.checks else None


def read_statuses(database: Database, sites: Sequence[Site]) -> list[SiteStatus]:
    """One row per site: its latest check (if any) and how many passed."""
    ids = [site.id for site in sites]
    checks = f"{quote_identifier(database.schema)}.checks"
    sql = f"""
        SELECT t.site_id, t.checks, t.passed, l.ok, l.status_code, l.response_time_ms,
               l.error, l.checked_at
        FROM (SELECT site_id, count(*) AS checks, count(*) FILTER (WHERE ok) AS passed
              FROM {checks} WHERE site_id = ANY(CAST(:ids AS text[])) GROUP BY site_id) t
        CROSS JOIN LATERAL (
            SELECT ok, status_code, response_time_ms, error, checked_at FROM {checks} c
            WHERE c.site_id = t.site_id ORDER BY checked_at DESC LIMIT 1) l
    """  # noqa: S608  (the schema is a validated, quoted identifier)
    try:
        with database.transaction() as connection:
            rows = connection.run(sql, ids=ids) if ids else []
    except pg8000.exceptions.DatabaseError as error:
        if sqlstate(error) != _UNDEFINED_TABLE:
            raise
        rows = []  # the writer creates the schema with its first batch
    found = {row[0]: row for row in rows}
    statuses = []
    for site in sites:
        row = found.get(site.id)
        if row is None:
            statuses.append(SiteStatus(site_id=site.id, url=site.url, enabled=site.enabled))
            continue
        statuses.append(
            SiteStatus(
                site_id=site.id,
                url=site.url,
                enabled=site.enabled,
                checks=int(row[1]),
                passed=int(row[2]),
                ok=row[3],
                status_code=row[4],
                response_time_ms=row[5],
                error=row[6],
                checked_at=row[7],
            )
        )
    return statuses


def _state(status: SiteStatus) -> str:
    if not status.enabled:
        return "disabled"
    if status.ok is None:
        return "waiting"
    return "ok" if status.ok else (status.error or "error")


def format_table(statuses: Sequence[SiteStatus], *, width: int = 100) -> list[str]:
    """The status table as lines: state, site, HTTP status, response time, availability."""
    state_width = max([8, *(len(_state(status)) for status in statuses)])
    id_width = max([len("SITE"), *(len(status.site_id) for status in statuses)])
    header = (
        f"{'STATE':<{state_width}} {'SITE':<{id_width}} {'HTTP':>4} {'TIME':>9} {'AVAIL':>7} "
        f"{'CHECKS':>6}  URL"
    )
    lines = [header[:width]]
    for status in statuses:
        http = str(status.status_code) if status.status_code is not None else "-"
        elapsed = (
            f"{status.response_time_ms:.0f} ms" if status.response_time_ms is not None else "-"
        )
        availability = status.availability
        avail = f"{availability:.1%}" if availability is not None else "-"
        line = (
            f"{_state(status):<{state_width}} {status.site_id:<{id_width}} {http:>4} "
            f"{elapsed:>9} {avail:>7} {status.checks:>6}  {status.url}"
        )
        lines.append(line[:width])
    return lines


class LiveView:
    """Writes status tables: redrawn in place on a terminal, appended otherwise."""

    def __init__(self, out: TextIO, *, tty: bool | None = None) -> None:
        self._out = out
        self.tty = out.isatty() if tty is None else tty
        self._block: list[str] = []  # the table on screen (terminal), redrawn in place

    def show(self, title: str, lines: Sequence[str], footer: Sequence[str] = ()) -> None:
        block = [title, *lines, *footer]
        if self.tty:
            self._erase()
            self._block = block
            self._out.write("\n".join(block) + "\n")
        else:
            self._out.write("\n".join(block) + "\n\n")
        self._out.flush()

    def message(self, text: str) -> None:
        """A line that stays; on a terminal it goes above the table, which is redrawn."""
        self._erase()
        self._out.write(text + "\n")
        if self._block:
            self._out.write("\n".join(self._block) + "\n")
        self._out.flush()

    def release(self) -> None:
        """Leaves the last table on screen: later messages go below it."""
        self._block = []

    def _erase(self) -> None:
        if self.tty and self._block:
            # Cursor up to the first line of the table, then clear to the end of the screen.
            self._out.write(f"\x1b[{len(self._block)}F\x1b[J")
