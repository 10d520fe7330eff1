"""Status page: render index.html, status.json and badges from PostgreSQL into S3."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from webchecker.page.statuspage import StatusPage, StatusPageSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# The package logs through stdlib child loggers of "webchecker": give them the same JSON.
copy_config_to_registered_loggers(source_logger=logger, include={"webchecker"})

# Cold start: bad configuration (no STATUS_BUCKET, bad site selection) fails here; the
# connection opens on the first run and is reused by later runs of this container.
PAGE = StatusPage.for_bucket(StatusPageSettings.from_env())


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    summary = PAGE.publish()
    metrics.add_metric(name="StatusPageSites", unit=MetricUnit.Count, value=summary["sites"])
    metrics.add_metric(name="StatusPageWrites", unit=MetricUnit.Count, value=summary["written"])
    return summary
