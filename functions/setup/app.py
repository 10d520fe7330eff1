"""Setup: the deploy's custom resource (bootstrap brokers, topic, schema migrations)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from webchecker.provision.custom_resource import Outcome, Request, serve
from webchecker.provision.setup import Setup, SetupSettings

logger = Logger()
tracer = Tracer()
copy_config_to_registered_loggers(source_logger=logger, include={"webchecker"})


def run(request: Request) -> Outcome:
    # Settings are read per request, not at import: a bad setting must reach CloudFormation
    # as a FAILED reply naming it, not as an init error that leaves the stack waiting.
    return Setup(SetupSettings.from_env())(request)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return serve(event, run, log_name=context.log_group_name)
