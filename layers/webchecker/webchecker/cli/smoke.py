"""`webchecker smoke`: after a deploy, prove the deployed stack runs one scheduler tick.

Finds the stack of a samconfig.toml environment (``--config-env``) or ``--stack-name``,
checks that its last deploy completed, takes the scheduler's name from the stack's outputs
and invokes it once, synchronously, with a scheduled event for the current minute: the
scheduler reads the sites from Parameter Store and hands the due ones to the checker, as
every minute. The summary it returns must be well formed with no failed invocation. Any
failure exits 1, says what failed and how to roll back (docs/continuous-delivery.md).
The tick is a real one: due sites are checked once more in that minute.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from webchecker.exceptions import ConfigurationError, SmokeCheckFailed

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


@dataclass(frozen=True, kw_only=True)
class SamEnvironment:
    """The stack name and region of one samconfig.toml environment."""

    name: str
    stack_name: str
    region: str | None


def sam_environment(config_env: str, path: Path) -> SamEnvironment:
    """Reads ``stack_name`` and ``region`` of ``config_env`` (global, then deploy section)."""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot be read ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path}: not valid TOML ({error})") from None
    environment = config.get(config_env)
    if not isinstance(environment, dict):
        known = ", ".join(sorted(key for key, value in config.items() if isinstance(value, dict)))
        raise ConfigurationError(f"{path}: no environment {config_env!r} (known: {known})")
    merged: dict[str, Any] = {}
    for section in ("deploy", "global"):  # global wins, as for every sam command
        table = environment.get(section)
        parameters = table.get("parameters") if isinstance(table, dict) else None
        if isinstance(parameters, dict):
            merged.update(parameters)
    stack_name = merged.get("stack_name")
    if not isinstance(stack_name, str) or not stack_name:
        raise ConfigurationError(f"{path}: environment {config_env!r} has no stack_name")
    region = merged.get("region")
    return SamEnvironment(
        name=config_env,
        stack_name=stack_name,
        region=region if isinstance(region, str) and region else None,
    )


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


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "smoke",
        help="one scheduler tick on a deployed stack (after make deploy)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--config-env", metavar="ENV", help="samconfig.toml environment")
    target.add_argument("--stack-name", metavar="NAME", help="the stack, by name")
    parser.add_argument(
        "--config-file", type=Path, default=Path("samconfig.toml"), help="default samconfig.toml"
    )
    parser.add_argument("--region", help="default: the environment's, else AWS_REGION")
    parser.set_defaults(handler=_smoke)


def _smoke(args: argparse.Namespace) -> int:
    if args.config_env:
        environment = sam_environment(args.config_env, args.config_file)
    else:
        environment = SamEnvironment(name="ENV", stack_name=args.stack_name, region=None)
    session = boto3.session.Session(region_name=args.region or environment.region)
    try:
        summary = run_smoke(
            environment.stack_name,
            cloudformation=session.client("cloudformation"),
            lambda_client=session.client("lambda"),
            now=datetime.now(UTC),
        )
    except (NoCredentialsError, NoRegionError) as error:
        # Not the stack's fault: nothing was checked, so no rollback advice.
        raise ConfigurationError(f"AWS: {error} (credentials; AWS_REGION or --region)") from None
    except (SmokeCheckFailed, BotoCoreError) as error:
        print(f"webchecker smoke: FAILED: {error}")
        print(ROLLBACK.format(env=environment.name, stack=environment.stack_name))
        return 1
    counts = ", ".join(f"{key} {summary[key]}" for key in SUMMARY_COUNTS)
    print(f"webchecker smoke: ok: stack {environment.stack_name}, tick {summary['tick']}: {counts}")
    if summary["sites"] == 0:
        print("webchecker smoke: note: no sites under the stack's SitesPath yet")
    return 0
