"""Notifier: publish the pending alerts of the outbox to SNS, oldest first (every minute)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from webchecker.alert.notifier import Notifier, NotifierSettings, handle

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# The package logs through stdlib child loggers of "webchecker": give them the same JSON.
copy_config_to_registered_loggers(source_logger=logger, include={"webchecker"})

# Cold start: bad configuration (no ALERT_TOPIC_ARN, a bad number) fails here; the
# database connection and the SNS client are reused by every later invocation.
NOTIFIER = Notifier(NotifierSettings.from_env(), metrics=metrics)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(NOTIFIER, event)
