"""Checker: check a shard of sites concurrently and publish one result per check to Kafka."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from webchecker.check.checker import run_checks
from webchecker.check.probe import ProbeSettings
from webchecker.check.transport import KafkaPublisher, KafkaSettings
from webchecker.config import env_optional
from webchecker.schedule.slow_sites import SlowSitesQueue

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# The package logs through stdlib child loggers of "webchecker": give them the same JSON.
copy_config_to_registered_loggers(source_logger=logger, include={"webchecker"})

# Cold start: bad configuration fails here; the producer is created on the first publish
# and reused by every later invocation of this container.
PROBE = ProbeSettings.from_env()
PUBLISHER = KafkaPublisher(KafkaSettings.from_env())
# The scheduler starts the sites reported here first in their shard (schedule/slow_sites.py).
_QUEUE_URL = env_optional("SLOW_SITES_QUEUE_URL")
SLOW_SITES = None if _QUEUE_URL is None else SlowSitesQueue(_QUEUE_URL)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_checks(
        event,
        settings=PROBE,
        publisher=PUBLISHER,
        metrics=metrics,
        report_slow=None if SLOW_SITES is None else SLOW_SITES.send,
    )
