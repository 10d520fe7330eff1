"""Webhook: alerts from the SNS topic posted to a Slack, Discord or Teams channel."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from webchecker.alert.webhook import WebhookPoster, WebhookSettings

logger = Logger()
tracer = Tracer()
# The package logs through stdlib child loggers of "webchecker": give them the same JSON.
copy_config_to_registered_loggers(source_logger=logger, include={"webchecker"})

# Cold start: bad configuration fails here; the URL is read from its secret on first use.
POSTER = WebhookPoster(WebhookSettings.from_env())


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return POSTER.handle(event)
