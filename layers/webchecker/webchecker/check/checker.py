"""The checker's invocation: read the payload, check every site at once, publish, report.

The payload is what the scheduler sends: ``{"scheduled_at": "<RFC 3339>", "sites": [...]}``.
A site that is not valid is logged with its index and the reason and skipped; the others
are still checked. The summary extends DESIGN.md's ``{"checked", "ok", "failed",
"published"}`` with ``invalid``, the number of skipped site objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from webchecker.check.probe import ProbeSettings, SlowSites, check_sites
from webchecker.exceptions import InvalidEvent, SiteError
from webchecker.results import CheckResult, parse_timestamp
from webchecker.sites import Site

logger = logging.getLogger(__name__)


class Publisher(Protocol):
    """Where results go (``transport.KafkaPublisher`` in the Lambda function)."""

    def prepare(self) -> None:
        """Ready to send, before the first check starts (raises ``PublishError``)."""

    def send(self, result: CheckResult) -> None:
        """Sends one result as soon as its check ended; never raises."""

    def flush(self) -> int:
        """How many results sent since :meth:`prepare` arrived; ``PublishError`` if not all."""


@dataclass(frozen=True, kw_only=True)
class CheckerEvent:
    """The checker's payload, parsed: the tick, the valid sites, and the invalid ones."""

    scheduled_at: datetime
    sites: tuple[Site, ...]
    invalid: tuple[tuple[int, str], ...] = ()  # (index in "sites", reason)

    @classmethod
    def from_dict(cls, event: object) -> CheckerEvent:
        """Parses the payload; raises ``InvalidEvent`` only when the payload itself is wrong."""
        if not isinstance(event, Mapping):
            raise InvalidEvent(f"checker event must be a JSON object, got {type(event).__name__}")
        raw_time = event.get("scheduled_at")
        if not isinstance(raw_time, str):
            raise InvalidEvent("checker event: scheduled_at is required (an RFC 3339 timestamp)")
        try:
            scheduled_at = parse_timestamp(raw_time)
        except ValueError as error:
            raise InvalidEvent(
                f"checker event: scheduled_at {raw_time[:64]!r}: {str(error)[:200]}"
            ) from None
        raw_sites = event.get("sites")
        if not isinstance(raw_sites, list):
            raise InvalidEvent("checker event: sites is required (a list of site objects)")
        sites: list[Site] = []
        invalid: list[tuple[int, str]] = []
        seen: set[str] = set()
        for index, raw in enumerate(raw_sites):
            try:
                site = Site.from_dict(raw)
            except SiteError as error:
                invalid.append((index, str(error)))
                continue
            if site.id in seen:  # one message per site and tick: a repeat is a sender bug
                invalid.append((index, f"id: {site.id!r} appears more than once"))
                continue
            seen.add(site.id)
            sites.append(site)
        return cls(scheduled_at=scheduled_at, sites=tuple(sites), invalid=tuple(invalid))


def run_checks(
    event: Mapping[str, Any],
    *,
    settings: ProbeSettings,
    publisher: Publisher,
    metrics: Metrics | None = None,
    report_slow: Callable[[Mapping[str, float]], object] | None = None,
) -> dict[str, int]:
    """Checks the payload's sites concurrently and publishes one result per check.

    ``report_slow`` is given the sites whose checks took ``SLOW_SECONDS`` or more (site id
    to seconds), for the scheduler to start them first next time; it must not raise.

    Raises ``InvalidEvent`` for a malformed payload and ``PublishError`` when any result
    was not delivered (so that the invocation is retried).
    """
    try:
        parsed = CheckerEvent.from_dict(event)
    except InvalidEvent:
        if metrics is not None:
            metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
        raise
    for index, reason in parsed.invalid:
        logger.error(
            "invalid site in the checker payload, skipped",
            extra={"site_index": index, "reason": reason},
        )
    publisher.prepare()
    seen = SlowSites(limit=len(parsed.sites))
    results = asyncio.run(
        check_sites(
            parsed.sites,
            scheduled_at=parsed.scheduled_at,
            settings=settings,
            seen=seen,
            on_result=publisher.send,
        )
    )
    failed = 0
    for result in results:
        if not result.ok:
            failed += 1
            # Site id and outcome only: never the request headers (they may hold secrets).
            logger.warning(
                "check failed",
                extra={
                    "site_id": result.site_id,
                    "error": result.error,
                    "error_detail": result.error_detail,
                    "status_code": result.status_code,
                },
            )
    if metrics is not None:
        _record_metrics(metrics, results, failed, len(parsed.invalid))
    published = publisher.flush()
    if report_slow is not None:  # after the flush: a report never delays a result
        report_slow(seen.as_dict())
    summary = {
        "checked": len(results),
        "ok": len(results) - failed,
        "failed": failed,
        "published": published,
        "invalid": len(parsed.invalid),
    }
    logger.info("checked %d sites", len(results), extra={"summary": summary})
    return summary


def _record_metrics(
    metrics: Metrics, results: Sequence[CheckResult], failed: int, invalid: int
) -> None:
    metrics.add_metric(name="Checks", unit=MetricUnit.Count, value=len(results))
    metrics.add_metric(name="CheckFailures", unit=MetricUnit.Count, value=failed)
    if invalid:
        metrics.add_metric(name="InvalidSites", unit=MetricUnit.Count, value=invalid)
    for result in results:
        if result.response_time_ms is not None:
            metrics.add_metric(
                name="ResponseTime", unit=MetricUnit.Milliseconds, value=result.response_time_ms
            )
