"""One scheduler tick: read the sites, pick the due ones, fan them out to the checker.

``run_schedule`` is what ``functions/scheduler/app.py`` calls; the store and the invoker
are passed in (created once per container), so tests and the local stack can use moto or
a recording invoker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from webchecker.config import env_int, env_optional
from webchecker.exceptions import ConfigurationError, FanoutError
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings
from webchecker.schedule.fanout import DEFAULT_CONCURRENCY, Invoker, fan_out
from webchecker.schedule.plan import (
    DEFAULT_CHECKS_PER_INVOCATION,
    DEFAULT_MAX_PAYLOAD_BYTES,
    due_sites,
    format_tick,
    group_by_timeout,
    plan_shards,
    tick_from_event,
)
from webchecker.schedule.slow_sites import SlowSiteHints, SlowSitesQueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SchedulerSettings:
    """The scheduler's configuration (built once at cold start)."""

    checker_function_name: str
    checks_per_invocation: int = DEFAULT_CHECKS_PER_INVOCATION
    fanout_concurrency: int = DEFAULT_CONCURRENCY
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    store: SiteStoreSettings = field(default_factory=SiteStoreSettings)
    #: Where the checkers report their slow sites (slow_sites.py); None: no reports read.
    slow_sites_queue_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SchedulerSettings:
        function_name = env_optional("CHECKER_FUNCTION_NAME", env)
        if function_name is None:
            raise ConfigurationError("CHECKER_FUNCTION_NAME: required (the checker's name or ARN)")
        return cls(
            checker_function_name=function_name,
            checks_per_invocation=env_int(
                "CHECKS_PER_INVOCATION", DEFAULT_CHECKS_PER_INVOCATION, env, minimum=1
            ),
            fanout_concurrency=env_int(
                "FANOUT_CONCURRENCY", DEFAULT_CONCURRENCY, env, minimum=1, maximum=256
            ),
            store=SiteStoreSettings.from_env(env),
            slow_sites_queue_url=env_optional("SLOW_SITES_QUEUE_URL", env),
        )


def run_schedule(
    event: Mapping[str, Any],
    *,
    settings: SchedulerSettings,
    store: SiteStore,
    invoker: Invoker,
    metrics: Metrics | None = None,
    slow_sites: SlowSitesQueue | None = None,
    hints: SlowSiteHints | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Schedules the tick of ``event``; returns the DESIGN.md summary.

    ``{"tick", "sites", "due", "invocations", "invalid"}``, extended with ``oversized``
    (due sites too large for one payload, never sent), ``failed_invocations`` and
    ``slow_reports`` (reports of slow sites read from ``slow_sites`` into ``hints``, which
    order each shard's sites slowest first).
    """
    tick = tick_from_event(event)
    scheduled_at = format_tick(tick)
    reports = 0
    if hints is not None:
        now = clock()
        if slow_sites is not None:
            reports = slow_sites.drain(lambda slow: hints.learn(slow, now))
        hints.forget_older_than(now)
    catalog = store.load()
    for entry in catalog.invalid:
        logger.warning(
            "invalid site entry skipped: %s",
            entry,
            extra={"parameter": entry.parameter, "index": entry.index, "reason": entry.reason},
        )

    due = due_sites(catalog.sites, tick)
    plan = plan_shards(
        group_by_timeout(due),
        scheduled_at,
        max_sites=settings.checks_per_invocation,
        max_bytes=settings.max_payload_bytes,
        slow_seconds=None if hints is None else hints.seconds,
    )
    for site in plan.oversized:
        logger.error(
            "site %s skipped: its payload is %d bytes, over the %d-byte invoke limit",
            site.site_id,
            site.size,
            settings.max_payload_bytes,
            extra={"site_id": site.site_id, "size": site.size},
        )
    result = fan_out(plan.shards, invoker, concurrency=settings.fanout_concurrency)

    summary: dict[str, Any] = {
        "tick": scheduled_at,
        "sites": len(catalog.sites),
        "due": len(due),
        "invocations": result.sent,
        "invalid": len(catalog.invalid),
        "oversized": len(plan.oversized),
        "failed_invocations": len(result.failed),
        "slow_reports": reports,
    }
    logger.info("scheduled %s", scheduled_at, extra={"summary": summary})
    if metrics is not None:
        for name, value in (
            ("Sites", summary["sites"]),
            ("DueSites", summary["due"]),
            ("Invocations", summary["invocations"]),
            ("InvalidSites", summary["invalid"]),
            ("OversizedSites", summary["oversized"]),
            ("FailedInvocations", summary["failed_invocations"]),
            ("SlowSiteReports", summary["slow_reports"]),
        ):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if plan.shards and not result.sent:
        raise FanoutError(
            f"all {len(plan.shards)} invokes of {settings.checker_function_name} failed, "
            f"no site was handed over; first error: {result.failed[0].reason}"
        )
    return summary
