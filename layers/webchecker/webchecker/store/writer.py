"""The writer: one MSK batch in, stored idempotently in PostgreSQL, a summary out.

``Writer.handle`` is what ``functions/writer/app.py`` calls, and what the local poller
calls through the handler. Per container it migrates the schema once (cheap when nothing
is pending) and applies retention every few hours, after the batch, so that retention
trouble never holds up or fails a batch. Only infrastructure failures raise
(``StoreUnavailable``): the event source mapping then delivers the same batch again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from webchecker.config import env_bool, env_float
from webchecker.exceptions import StoreUnavailable
from webchecker.store.batch import BatchOutcome, CheckStore
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.incidents import IncidentSettings
from webchecker.store.migrations import RetentionSettings, apply_retention, migrate
from webchecker.store.msk import MskEvent

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_INTERVAL = 6 * 3600.0


@dataclass(frozen=True, kw_only=True)
class WriterSettings:
    """The writer's configuration (built once at cold start)."""

    database: DatabaseSettings
    retention: RetentionSettings
    incidents: IncidentSettings = field(default_factory=IncidentSettings)
    migrate: bool = True
    retention_interval: float = DEFAULT_RETENTION_INTERVAL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WriterSettings:
        return cls(
            database=DatabaseSettings.from_env(env),
            retention=RetentionSettings.from_env(env),
            incidents=IncidentSettings.from_env(env),
            migrate=env_bool("DB_MIGRATE", True, env),
            retention_interval=env_float(
                "RETENTION_INTERVAL_SECONDS", DEFAULT_RETENTION_INTERVAL, env, minimum=0
            ),
        )


class Writer:
    """Holds the container's connection and store; ``handle(event)`` per invocation."""

    def __init__(
        self,
        settings: WriterSettings,
        *,
        database: Database | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.database = database or Database(settings.database)
        self.store = CheckStore(
            self.database, retention=settings.retention, incidents=settings.incidents
        )
        self._metrics = metrics
        self._migrated = not settings.migrate
        self._retention_due = time.monotonic()

    def handle(self, event: Mapping[str, Any]) -> dict[str, int]:
        """Stores one MSK event; returns ``{"received", "inserted", "duplicates", "rejected"}``."""
        batch = MskEvent.from_dict(event)
        reused = self.database.connected
        if not self._migrated:
            applied = migrate(self.database)
            if applied:
                logger.info("schema migrated to version %s", applied[-1])
            self._migrated = True
        try:
            outcome = self.store.write(batch.records)
        except StoreUnavailable:
            if not reused:
                raise
            # a connection kept between invocations may have been closed while the container
            # was idle (server restart, proxy or NAT idle timeout): one fresh try, since a
            # batch is one transaction and idempotent
            logger.warning("database connection lost; reconnecting once")
            outcome = self.store.write(batch.records)
        logger.info("batch stored", extra=outcome.as_dict())
        self._record_metrics(outcome)
        self._maybe_apply_retention()
        return outcome.as_dict()

    def close(self) -> None:
        self.database.close()

    def _record_metrics(self, outcome: BatchOutcome) -> None:
        if self._metrics is None:
            return
        # ChecksReceived, ChecksInserted (the template's "no checks written" alarm), ...
        for name, value in outcome.as_dict().items():
            self._metrics.add_metric(
                name=f"Checks{name.capitalize()}", unit=MetricUnit.Count, value=value
            )

    def _maybe_apply_retention(self) -> None:
        if self.settings.retention_interval <= 0 or time.monotonic() < self._retention_due:
            return
        self._retention_due = time.monotonic() + self.settings.retention_interval
        try:
            apply_retention(self.database, self.settings.retention)
        except Exception:  # the batch is stored (raising would only redeliver it): next time
            logger.exception("retention failed; will try again later")
