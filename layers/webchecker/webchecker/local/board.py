"""What the live view shows after a tick: the tick line, the status table, and a footer."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

from webchecker.local.functions import Functions
from webchecker.local.live import LiveView, format_table, read_statuses
from webchecker.local.services import Postgres
from webchecker.local.site_file import SiteFile


class StatusBoard:
    """The sites in Parameter Store with what the writer stored for them."""

    def __init__(self, *, sites: SiteFile, postgres: Postgres, functions: Functions) -> None:
        self.sites = sites
        self.postgres = postgres
        self.functions = functions

    def render(self, view: LiveView, summary: Mapping[str, Any]) -> None:
        try:
            catalog = self.sites.store.load(force=True)
            statuses = read_statuses(self.postgres.database, catalog.sites)
        except Exception as error:  # e.g. the schema is created by the writer's first batch
            view.message(f"(status not available yet: {error})")
            return
        width = shutil.get_terminal_size((120, 24)).columns
        title = (
            f"tick {summary.get('tick', '-')}: {summary.get('sites', 0)} sites, "
            f"{summary.get('due', 0)} due, {summary.get('invocations', 0)} checker invocations"
            f"{', ' + str(summary['invalid']) + ' invalid' if summary.get('invalid') else ''}"
        )
        footer = []
        api = self.functions.api
        if api is not None and api.failures:
            footer.append(
                f"{len(api.failures)} checker events dropped after 3 attempts: "
                f"see {self.sites.settings.state_path / 'lambda-failures.jsonl'}"
            )
        view.show(title, format_table(statuses, width=width), footer)
