"""Writer: store a batch of check results from MSK in PostgreSQL, idempotently."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from webchecker.store.writer import Writer, WriterSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# The package logs through stdlib child loggers of "webchecker": give them the same JSON.
copy_config_to_registered_loggers(source_logger=logger, include={"webchecker"})

# Cold start: bad configuration fails here; the connection opens on the first batch and is
# reused by every later invocation of this container (re-opened after a failure).
WRITER = Writer(WriterSettings.from_env(), metrics=metrics)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return WRITER.handle(event)
