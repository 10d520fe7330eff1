"""Scheduler: every minute, hand the due sites to the checker in shards (async invokes)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from webchecker.schedule.catalog import SiteStore
from webchecker.schedule.fanout import LambdaInvoker, new_lambda_client
from webchecker.schedule.scheduler import SchedulerSettings, run_schedule
from webchecker.schedule.slow_sites import SlowSiteHints, SlowSitesQueue

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# The package logs through stdlib child loggers of "webchecker": give them the same JSON.
copy_config_to_registered_loggers(source_logger=logger, include={"webchecker"})

# Cold start: bad configuration fails here; clients (and the site cache) live per container.
SETTINGS = SchedulerSettings.from_env()
STORE = SiteStore(SETTINGS.store)
INVOKER = LambdaInvoker(
    SETTINGS.checker_function_name, client=new_lambda_client(SETTINGS.fanout_concurrency)
)
# What the checkers reported as slow, kept by this warm container from tick to tick.
SLOW_SITES = (
    None if SETTINGS.slow_sites_queue_url is None else SlowSitesQueue(SETTINGS.slow_sites_queue_url)
)
HINTS = SlowSiteHints()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_schedule(
        event,
        settings=SETTINGS,
        store=STORE,
        invoker=INVOKER,
        metrics=metrics,
        slow_sites=SLOW_SITES,
        hints=HINTS,
    )
