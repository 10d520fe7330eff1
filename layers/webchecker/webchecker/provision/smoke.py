"""After a deploy: one scheduler tick on the deployed stack proves it runs (``make smoke``).

The stack's last deploy must have completed; its output ``SchedulerFunctionName`` names the
scheduler, which is invoked once, synchronously, with a scheduled event for the current
minute: it reads the sites from Parameter Store and hands the due ones to the checker, as
every minute (a real tick: the due sites are checked once more). Its summary must be well
formed, for that tick, with no failed checker invocation. Anything else raises
``SmokeCheckFailed`` saying what failed; ``ROLLBACK`` says what to do then.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from webchecker.exceptions import SmokeCheckFailed

#: The stack states after a deploy that went through (an update that rolled back did not).
HEALTHY_STATES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE"})
SCHEDULER_OUTPUT = "SchedulerFunctionName"
#: The scheduler's summary (DESIGN.md): each a count.
SUMMARY_COUNTS = ("sites", "due", "invocations", "invalid", "failed_invocations")

ROLLBACK = """\
How to roll back (docs/continuous-delivery.md, "Rolling back"):
  1. Deploy the last good version again: run the Deploy workflow by hand on its tag
     (Actions > Deploy > Run workflow), or locally: git checkout <tag> && make deploy ENV={env}
  2. Migrations are not undone: they add tables and columns, so the previous version runs on
     the newer schema.
  3. If the stack is stuck in UPDATE_ROLLBACK_FAILED:
     aws cloudformation continue-update-rollback --stack-name {stack}"""


def scheduled_event(now: datetime) -> dict[str, Any]:
    """An EventBridge scheduled event for the minute of ``now`` (the schedule's own shape)."""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    return {
        "version": "0",
        "id": f"webchecker-smoke-{minute:%Y%m%dT%H%M}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [],
        "detail": {},
    }


def scheduler_function(cloudformation: Any, stack_name: str) -> str:
    """The scheduler's name from the stack's outputs, once the stack's last deploy completed."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        raise SmokeCheckFailed(f"stack {stack_name}: {_aws_message(error)}") from None
    stack = stacks[0]
    status = stack.get("StackStatus", "")
    if status not in HEALTHY_STATES:
        reason = stack.get("StackStatusReason") or "no reason given"
        raise SmokeCheckFailed(f"stack {stack_name} is {status} ({reason}), not deployed")
    outputs = {item["OutputKey"]: item.get("OutputValue", "") for item in stack.get("Outputs", [])}
    name = outputs.get(SCHEDULER_OUTPUT)
    if not isinstance(name, str) or not name:
        raise SmokeCheckFailed(f"stack {stack_name} has no output {SCHEDULER_OUTPUT}")
    return name


def check_summary(summary: Any, event: Mapping[str, Any]) -> dict[str, Any]:
    """The scheduler's answer must be the tick's summary, with no failed invocation."""
    if not isinstance(summary, dict):
        raise SmokeCheckFailed(f"the scheduler returned {_short(summary)}, not a summary")
    if summary.get("tick") != event["time"]:
        raise SmokeCheckFailed(
            f"the scheduler ran tick {_short(summary.get('tick'))}, expected {event['time']}"
        )
    for key in SUMMARY_COUNTS:
        value = summary.get(key)
        if type(value) is not int or value < 0:
            raise SmokeCheckFailed(f"summary: {key} is {_short(value)}, expected a count")
    if summary["failed_invocations"]:
        raise SmokeCheckFailed(
            f"the scheduler could not invoke the checker {summary['failed_invocations']} "
            f"time(s) out of {summary['failed_invocations'] + summary['invocations']}"
        )
    return summary


def run_smoke(
    stack_name: str, *, cloudformation: Any, lambda_client: Any, now: datetime
) -> dict[str, Any]:
    """One tick on the deployed stack; returns the scheduler's summary or raises."""
    function = scheduler_function(cloudformation, stack_name)
    event = scheduled_event(now)
    try:
        response = lambda_client.invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
    except ClientError as error:
        raise SmokeCheckFailed(f"invoking {function}: {_aws_message(error)}") from None
    body = response["Payload"].read()
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        raise SmokeCheckFailed(f"{function} returned non-JSON: {_short(body)}") from None
    if response.get("FunctionError"):
        detail = payload if not isinstance(payload, dict) else payload.get("errorMessage")
        kind = payload.get("errorType", "error") if isinstance(payload, dict) else "error"
        raise SmokeCheckFailed(f"{function} failed: {kind}: {_short(detail)}")
    return check_summary(payload, event)


def _aws_message(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'error')}: {details.get('Message', str(error))}"


def _short(value: Any, limit: int = 300) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
