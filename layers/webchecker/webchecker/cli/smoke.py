"""`webchecker smoke`: after a deploy, one scheduler tick on the deployed stack (make smoke).

Finds the stack of a samconfig.toml environment (``--config-env``) or ``--stack-name``,
checks that its last deploy completed, invokes its scheduler once with a scheduled event
for the current minute and checks the summary. Any failure exits 1, saying what failed and
how to roll back (docs/continuous-delivery.md).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, NoCredentialsError, NoRegionError

from webchecker.exceptions import ConfigurationError, SmokeCheckFailed
from webchecker.provision.preflight import load_config
from webchecker.provision.smoke import ROLLBACK, SUMMARY_COUNTS, run_smoke


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
    environment, stack_name, region = "ENV", args.stack_name, args.region
    if args.config_env:
        config = load_config(args.config_file, args.config_env)
        if config.stack_name is None:
            raise ConfigurationError(
                f"{args.config_file}: environment {args.config_env!r} has no stack_name"
            )
        environment, stack_name = args.config_env, config.stack_name
        region = region or config.region
    session = boto3.session.Session(region_name=region)
    try:
        summary = run_smoke(
            stack_name,
            cloudformation=session.client("cloudformation"),
            lambda_client=session.client("lambda"),
            now=datetime.now(UTC),
        )
    except (NoCredentialsError, NoRegionError) as error:
        # Not the stack's fault: nothing was checked, so no rollback advice.
        raise ConfigurationError(f"AWS: {error} (credentials; AWS_REGION or --region)") from None
    except (SmokeCheckFailed, BotoCoreError) as error:
        print(f"webchecker smoke: FAILED: {error}")
        print(ROLLBACK.format(env=environment, stack=stack_name))
        return 1
    counts = ", ".join(f"{key} {summary[key]}" for key in SUMMARY_COUNTS)
    print(f"webchecker smoke: ok: stack {stack_name}, tick {summary['tick']}: {counts}")
    if summary["sites"] == 0:
        print("webchecker smoke: note: no sites under the stack's SitesPath yet")
    return 0
