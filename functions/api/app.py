"""API: the REST API behind API Gateway (HTTP API, payload 2.0, IAM authorization)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from webchecker.api.app import Api

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# The package logs through stdlib child loggers of "webchecker": give them the same JSON.
copy_config_to_registered_loggers(source_logger=logger, include={"webchecker"})

# Cold start: bad configuration fails here; the Parameter Store client, the database
# connection (opened on the first request that needs it) and SNS are reused by every
# later request of this container.
API = Api.from_env()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = API.handle(event, context)
    # Responses2xx/4xx/5xx: an alarm on Responses5xx catches what users would only report
    metrics.add_metric(f"Responses{str(response['statusCode'])[0]}xx", MetricUnit.Count, 1)
    return response
