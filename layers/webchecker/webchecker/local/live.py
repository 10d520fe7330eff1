"""The live view of ``webchecker local``: each site's latest check and availability so far.

Read from PostgreSQL (what the writer stored, so the view shows the whole pipeline working),
for the sites currently in Parameter Store. On a terminal the table is redrawn in place;
otherwise (a pipe, a CI log) it is printed as plain lines once per tick.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import unicodedata
from collections.abc import Callable, Sequence
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


def _needs_attention(status: SiteStatus) -> bool:
    return status.enabled and status.ok is False


def format_table(
    statuses: Sequence[SiteStatus], *, width: int = 100, height: int | None = None
) -> list[str]:
    """The status table as lines: state, site, HTTP status, response time, availability.

    At most ``height`` lines: when the sites do not fit, the failing ones are kept first
    (in table order) and a last line counts the others.
    """
    state_width = max([8, *(len(_state(status)) for status in statuses)])
    id_width = max([len("SITE"), *(len(status.site_id) for status in statuses)])
    header = (
        f"{'STATE':<{state_width}} {'SITE':<{id_width}} {'HTTP':>4} {'TIME':>9} {'AVAIL':>7} "
        f"{'CHECKS':>6}  URL"
    )
    shown, hidden = _fit(statuses, height)
    lines = [clip(header, width)]
    for status in shown:
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
        lines.append(clip(line, width))
    if hidden:
        failing = sum(map(_needs_attention, hidden))
        more = f"... {len(hidden)} more {_sites(len(hidden))} not shown"
        more += f" ({failing} failing)" if failing else " (all passing or waiting)"
        lines.append(clip(more + "; `webchecker report` lists every site", width))
    return lines


def _fit(
    statuses: Sequence[SiteStatus], height: int | None
) -> tuple[list[SiteStatus], list[SiteStatus]]:
    """The rows shown within ``height`` lines (header and summary included), and the rest."""
    if height is None or len(statuses) + 1 <= height:
        return list(statuses), []
    room = max(height - 2, 0)  # the header and the "more" line
    order = sorted(range(len(statuses)), key=lambda i: not _needs_attention(statuses[i]))
    kept = set(order[:room])
    shown = [status for i, status in enumerate(statuses) if i in kept]
    return shown, [status for i, status in enumerate(statuses) if i not in kept]


def _sites(count: int) -> str:
    return "site" if count == 1 else "sites"


def clip(text: str, width: int) -> str:
    """``text`` as one terminal line of at most ``width`` cells: control characters (from
    a site's URL or a reason) shown as ``?``, wide characters counted twice."""
    cells = 0
    out = []
    for char in text:
        if not char.isprintable():
            char = "?"
        size = 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        if cells + size > width:
            break
        out.append(char)
        cells += size
    return "".join(out)


def terminal_size(out: TextIO | None = None) -> os.terminal_size:
    """The size of the terminal ``out`` (default stdout) shows on, asked from the terminal
    itself: ``COLUMNS``/``LINES`` (which ``shutil`` prefers) go stale on a resize when a
    shell has exported them. Without a terminal: those variables, else 120x24."""
    stream = out or sys.__stdout__
    try:
        if stream is not None:
            return os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        pass
    return shutil.get_terminal_size((120, 24))


class LiveView:
    """Writes status tables: redrawn in place on a terminal, appended otherwise.

    On a terminal the table (title and footer included) is kept within the screen: at most
    one line less than its height, each line narrower than its width. Taller, the cursor
    could not move back to its first line, and every redraw would push a copy into the
    scrollback.
    """

    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool | None = None,
        size: Callable[[], os.terminal_size] | None = None,
    ) -> None:
        self._out = out
        self.tty = out.isatty() if tty is None else tty
        self.size = size or (lambda: terminal_size(out))
        self._block: list[str] = []  # the table on screen (terminal), redrawn in place

    def room(self) -> tuple[int, int]:
        """Lines and columns a table may take on this terminal (no limit otherwise)."""
        if not self.tty:
            return 1_000_000, 1_000_000
        size = self.size()
        return max(size.lines - 1, 1), max(size.columns - 1, 10)

    def show(self, title: str, lines: Sequence[str], footer: Sequence[str] = ()) -> None:
        block = [title, *lines, *footer]
        if self.tty:
            height, width = self.room()
            block = [clip(line, width) for line in block[:height]]
            self._draw([], block)
        else:
            self._out.write("\n".join(block) + "\n\n")
            self._out.flush()

    def message(self, text: str) -> None:
        """A line that stays; on a terminal it goes above the table, which is redrawn."""
        if self.tty and self._block:
            self._draw([text], self._block)
        else:
            self._out.write(text + "\n")
            self._out.flush()

    def release(self) -> None:
        """Leaves the last table on screen: later messages go below it."""
        self._block = []

    def _draw(self, above: Sequence[str], block: list[str]) -> None:
        """Overwrites the table on screen with ``above`` (lines that stay) and ``block``.

        Line by line, each line cleared after its text, and the screen below cleared only
        when the new lines are fewer: never "clear to the end" from the top-left corner,
        which tmux (like ``clear``) answers by pushing the whole screen into the scrollback.
        """
        old = len(self._block)
        text = f"\r\x1b[{old}A" if old else ""
        text += "".join(f"{line}\x1b[K\n" for line in [*above, *block])
        if old > len(above) + len(block):
            text += "\x1b[J"
        self._block = block
        self._out.write(text)
        self._out.flush()
