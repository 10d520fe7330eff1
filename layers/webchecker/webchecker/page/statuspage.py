"""The status page, end to end: read the model, render the files, publish them.

``StatusPage.publish()`` is what ``functions/statuspage/app.py`` calls (S3),
``webchecker status-page --out DIR`` (a directory) and the local stack every tick.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from webchecker.config import env_bool, env_optional, env_str
from webchecker.page.badge import badge_name, render_badge
from webchecker.page.document import render_json, write_json
from webchecker.page.html import render_html_bytes, write_html
from webchecker.page.model import StatusModel, load_status
from webchecker.page.publish import Content, Files, Publisher, S3Publisher, content_size
from webchecker.page.settings import PageSettings
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import migrate

logger = logging.getLogger(__name__)

HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json"
SVG_TYPE = "image/svg+xml"


def render_files(
    model: StatusModel, *, spool: Path | None = None
) -> dict[str, tuple[Content, str]]:
    """index.html, status.json and one badge per site whose id is a safe file name; with
    ``spool`` (a directory) the page and the JSON are written there and named by their path
    instead of held in memory (10,000 sites: ~19 and ~100 MB)."""
    page: Content
    document: Content
    if spool is None:
        page, document = render_html_bytes(model), render_json(model)
    else:
        page, document = spool / "index.html", spool / "status.json"
        with page.open("wb") as out:
            write_html(model, out)
        with document.open("wb") as out:
            write_json(model, out)
    files: dict[str, tuple[Content, str]] = {
        "index.html": (page, HTML_TYPE),
        "status.json": (document, JSON_TYPE),
    }
    for site in model.sites:
        name = badge_name(site.site_id)
        if name is None:
            logger.warning("no badge for site id %r: not a safe file name", site.site_id[:80])
            continue
        files[name] = (render_badge(site), SVG_TYPE)
    return files


@dataclass(frozen=True, kw_only=True)
class StatusPageSettings:
    """The function's configuration: the database, the page, and the bucket."""

    database: DatabaseSettings
    page: PageSettings
    bucket: str
    prefix: str = ""
    migrate: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StatusPageSettings:
        return cls(
            database=DatabaseSettings.from_env(env),
            page=PageSettings.from_env(env),
            bucket=env_optional("STATUS_BUCKET", env) or "",
            prefix=env_str("STATUS_PREFIX", "", env),
            migrate=env_bool("DB_MIGRATE", True, env),
        )


class StatusPage:
    """Holds the container's connection; ``publish()`` renders and writes the files."""

    def __init__(
        self,
        page: PageSettings,
        database: Database,
        publisher: Publisher,
        *,
        migrate: bool = True,
    ) -> None:
        self.page = page
        self.database = database
        self.publisher = publisher
        self._migrated = not migrate

    @classmethod
    def for_bucket(cls, settings: StatusPageSettings) -> StatusPage:
        return cls(
            settings.page,
            Database(settings.database),
            S3Publisher(settings.bucket, prefix=settings.prefix),
            migrate=settings.migrate,
        )

    def publish(self, *, now: datetime | None = None) -> dict[str, int]:
        """Renders from the database and publishes: ``{"sites", "files", "bytes"}`` rendered,
        ``{"written", "unchanged", "deleted"}`` by the publisher."""
        if not self._migrated:  # a fresh database shows an empty page rather than failing
            migrate(self.database)
            self._migrated = True
        model = load_status(self.database, self.page, now=now)
        with tempfile.TemporaryDirectory(prefix="statuspage-") as spool:
            files: Files = render_files(model, spool=Path(spool))
            published = self.publisher.publish(files)
            size = sum(content_size(content) for content, _ in files.values())
        summary = {
            "sites": len(model.sites),
            "files": len(files),
            "bytes": size,
            "written": published.written,
            "unchanged": published.unchanged,
            "deleted": published.deleted,
        }
        logger.info("status page published", extra=summary)
        return summary

    def close(self) -> None:
        self.database.close()
