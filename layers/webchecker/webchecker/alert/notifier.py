"""The notifier: publishes the pending alerts of the outbox to SNS, oldest first.

Each run (every minute): reminders due are written, a tick's many opened (or resolved)
alerts are folded into one summary, then pending alerts go to ``ALERT_TOPIC_ARN`` in
``seq`` order, each marked sent as soon as SNS accepted it. A failed publish leaves the
alert pending (``attempts`` and ``last_error`` say why) and holds back the later alerts of
the same site in this run, so that a site's alerts never arrive out of order; other sites
go on. A publish waits at most a few seconds (short client timeouts, one attempt), and
after ``ALERT_MAX_FAILURES`` failures in a row (SNS down) or ``ALERT_RUN_SECONDS`` the run
stops: what is left goes next minute. One run at a time per schema (an advisory lock).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from webchecker.alert.formatting import message_attributes, subject
from webchecker.alert.outbox import Outbox, PendingAlert
from webchecker.config import env_float, env_int, env_optional
from webchecker.exceptions import ConfigurationError
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import migrate

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

DEFAULT_REMINDER_MINUTES = 0
DEFAULT_SUMMARY_THRESHOLD = 10
DEFAULT_BATCH = 500
DEFAULT_MAX_FAILURES = 3
DEFAULT_RUN_SECONDS = 45.0
DEFAULT_PUBLISH_TIMEOUT = 5.0


@dataclass(frozen=True, kw_only=True)
class NotifierSettings:
    """The notifier's configuration (built once at cold start)."""

    database: DatabaseSettings
    topic_arn: str
    reminder_minutes: int = DEFAULT_REMINDER_MINUTES
    summary_threshold: int = DEFAULT_SUMMARY_THRESHOLD
    batch: int = DEFAULT_BATCH
    max_failures: int = DEFAULT_MAX_FAILURES
    run_seconds: float = DEFAULT_RUN_SECONDS
    publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT
    migrate: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifierSettings:
        topic_arn = env_optional("ALERT_TOPIC_ARN", env)
        if topic_arn is None:
            raise ConfigurationError("ALERT_TOPIC_ARN: required (the SNS topic for alerts)")
        return cls(
            database=DatabaseSettings.from_env(env),
            topic_arn=topic_arn,
            reminder_minutes=env_int(
                "ALERT_REMINDER_MINUTES", DEFAULT_REMINDER_MINUTES, env, minimum=0
            ),
            summary_threshold=env_int(
                "ALERT_SUMMARY_THRESHOLD", DEFAULT_SUMMARY_THRESHOLD, env, minimum=0
            ),
            max_failures=env_int("ALERT_MAX_FAILURES", DEFAULT_MAX_FAILURES, env, minimum=1),
            run_seconds=env_float("ALERT_RUN_SECONDS", DEFAULT_RUN_SECONDS, env, minimum=1),
            publish_timeout=env_float(
                "ALERT_PUBLISH_TIMEOUT", DEFAULT_PUBLISH_TIMEOUT, env, minimum=0.1, maximum=60
            ),
        )


def sns_client(settings: NotifierSettings) -> SNSClient:
    """An SNS client that gives up quickly: a slow publish must not hold the others."""
    config = Config(
        connect_timeout=settings.publish_timeout,
        read_timeout=settings.publish_timeout,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    return boto3.client("sns", config=config)


@dataclass(kw_only=True)
class RunOutcome:
    sent: int = 0
    pending: int = 0
    failed: int = 0
    reminders: int = 0
    summarized: int = 0
    held_sites: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, int]:
        """The handler's return value (DESIGN.md): ``{"sent", "pending"}``."""
        return {"sent": self.sent, "pending": self.pending}


class Notifier:
    """Holds the container's connection and SNS client; ``run()`` per invocation."""

    def __init__(
        self,
        settings: NotifierSettings,
        *,
        database: Database | None = None,
        sns: SNSClient | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self.database = database or Database(settings.database)
        self.sns = sns or sns_client(settings)
        self.outbox = Outbox(self.database)
        self._migrated = not settings.migrate

    def run(self, now: datetime | None = None) -> RunOutcome:
        now = now or datetime.now(UTC)
        if not self._migrated:
            migrate(self.database)
            self._migrated = True
        outcome = RunOutcome()
        connection = self.database.connection()
        if not self.outbox.try_lock(connection):
            logger.info("another notifier run is publishing; leaving it to that one")
            outcome.pending = self.outbox.count_pending(connection)
            return outcome
        try:
            outcome.reminders = self.outbox.add_reminders(self.settings.reminder_minutes, now)
            outcome.summarized = self.outbox.add_summaries(self.settings.summary_threshold, now)
            self._publish_pending(outcome)
        finally:
            self.outbox.unlock(connection)
        outcome.pending = self.outbox.count_pending(connection)
        self._record_metrics(outcome)
        logger.info(
            "alerts published",
            extra={
                "sent": outcome.sent,
                "failed": outcome.failed,
                "pending": outcome.pending,
                "reminders": outcome.reminders,
                "summarized": outcome.summarized,
            },
        )
        return outcome

    def close(self) -> None:
        self.database.close()

    def _record_metrics(self, outcome: RunOutcome) -> None:
        if self._metrics is None:
            return
        # AlertsPending feeds the template's "alerts not going out" alarm
        for name, value in (
            ("AlertsSent", outcome.sent),
            ("AlertsFailed", outcome.failed),
            ("AlertsPending", outcome.pending),
        ):
            self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def _publish_pending(self, outcome: RunOutcome) -> None:
        deadline = time.monotonic() + self.settings.run_seconds
        failures_in_a_row = 0
        connection = self.database.connection()
        while time.monotonic() < deadline:
            batch = [
                alert
                for alert in self.outbox.pending(connection, self.settings.batch)
                if (alert.site_id or "") not in outcome.held_sites
            ]
            if not batch:
                return
            for alert in batch:
                if (alert.site_id or "") in outcome.held_sites:
                    continue
                if time.monotonic() >= deadline:
                    return
                error = self._publish(alert)
                if error is None:
                    self.outbox.mark_sent(connection, alert.alert_id)
                    outcome.sent += 1
                    failures_in_a_row = 0
                    continue
                logger.warning("publishing alert %s failed: %s", alert.alert_id, error)
                self.outbox.mark_failed(connection, alert.alert_id, error)
                outcome.failed += 1
                outcome.held_sites.add(alert.site_id or "")  # keep this site's order
                failures_in_a_row += 1
                if failures_in_a_row >= self.settings.max_failures:
                    logger.warning("SNS keeps failing; the rest waits for the next run")
                    return

    def _publish(self, alert: PendingAlert) -> str | None:
        """Publishes one alert; None when SNS accepted it, else the reason."""
        try:
            self.sns.publish(
                TopicArn=self.settings.topic_arn,
                Message=json.dumps(alert.payload, ensure_ascii=False),
                Subject=subject(alert.payload),
                MessageAttributes=message_attributes(alert.payload),  # type: ignore[arg-type]
            )
        except (BotoCoreError, ClientError) as error:
            return f"{type(error).__name__}: {error}"
        return None


def handle(notifier: Notifier, event: Mapping[str, Any]) -> dict[str, int]:
    """The scheduled event carries nothing we need: the outbox is the input."""
    del event
    return notifier.run().as_dict()
