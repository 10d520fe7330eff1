"""What the live view shows after a tick: the tick line, the status table, the invalid site
entries (the first few: where to find the rest), and a footer; within the terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webchecker.local.alerts import LocalAlerts
from webchecker.local.banner import webchecker_command
from webchecker.local.functions import Functions
from webchecker.local.live import LiveView, format_table, read_statuses, terminal_size
from webchecker.local.services import Postgres
from webchecker.local.site_file import SiteFile
from webchecker.sites import InvalidSite

#: Invalid entries listed by name and reason; the count says how many more there are.
INVALID_SHOWN = 3
#: The latest alerts the webhook sink received, shown under the table.
ALERTS_SHOWN = 3


def alert_lines(alerts: LocalAlerts | None, *, shown: int = ALERTS_SHOWN) -> list[str]:
    """The latest alerts delivered to the local webhook sink (their subjects), newest last."""
    if alerts is None:
        return []
    received = alerts.received()
    if not received:
        return []
    lines = [f"alerts sent: {len(received)} (all in {alerts.path})"]
    for entry in received[-shown:]:
        lines.append(f"  {entry.get('received_at', '')[11:19]}  {entry.get('subject')}")
    return lines


def invalid_lines(invalid: Sequence[InvalidSite], *, shown: int = INVALID_SHOWN) -> list[str]:
    """The first ``shown`` invalid entries with their reasons, and where to see them all."""
    if not invalid:
        return []
    count = len(invalid)
    lines = [f"{count} invalid site {'entry' if count == 1 else 'entries'} skipped:"]
    lines += [f"  {entry}" for entry in invalid[:shown]]
    more = f"  ... {count - shown} more: " if count > shown else "  all: "
    lines.append(f"{more}`{webchecker_command()} sites list` (after source .webchecker/env)")
    return lines


class StatusBoard:
    """The sites in Parameter Store with what the writer stored for them."""

    def __init__(
        self,
        *,
        sites: SiteFile,
        postgres: Postgres,
        functions: Functions,
        alerts: LocalAlerts | None = None,
    ) -> None:
        self.sites = sites
        self.postgres = postgres
        self.functions = functions
        self.alerts = alerts

    def render(self, view: LiveView, summary: Mapping[str, Any]) -> None:
        try:
            catalog = self.sites.store.load(force=True)
            statuses = read_statuses(self.postgres.database, catalog.sites)
        except Exception as error:  # e.g. the schema is created by the writer's first batch
            view.message(f"(status not available yet: {error})")
            return
        invalid = summary.get("invalid", 0)
        title = (
            f"tick {summary.get('tick', '-')}: {summary.get('sites', 0)} sites, "
            f"{summary.get('due', 0)} due, {summary.get('invocations', 0)} checker invocations"
            f"{f', {invalid} invalid' if invalid else ''}"
        )
        footer = invalid_lines(catalog.invalid) + alert_lines(self.alerts)
        api = self.functions.api
        if api is not None and api.failures:
            footer.append(
                f"{len(api.failures)} checker events dropped after 3 attempts: "
                f"see {self.sites.settings.state_path / 'lambda-failures.jsonl'}"
            )
        height, width = view.room()
        if not view.tty:
            width = terminal_size().columns
        room = height - 1 - len(footer)  # the title, then the table, then the footer
        if room < 4 and catalog.invalid:  # a short terminal: the table first
            footer = [footer[0], *footer[len(invalid_lines(catalog.invalid)) :]]
            room = height - 1 - len(footer)
        view.show(title, format_table(statuses, width=width, height=max(room, 2)), footer)
