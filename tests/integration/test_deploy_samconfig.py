"""The SAM CLI reads samconfig.toml's shared section for every command, with the region of
the AWS configuration: `sam list stack-outputs --config-env prod` finds the prod stack in
the region AWS_REGION names, as `sam logs`, `remote invoke` and `delete` do.

The "account" is moto's server on loopback, reached through AWS_ENDPOINT_URL; the same
stack name exists in two regions with different outputs, so the region that was used shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from webchecker.local.embedded.aws import EmbeddedAws

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".venv-tools/sam/bin/sam"
STACK = """{"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
 "Outputs": {"Where": {"Value": "%s"}}}"""


def cloudformation(aws: EmbeddedAws, region: str) -> Any:
    """A CloudFormation client on the embedded moto server, in ``region``."""
    return boto3.client(
        "cloudformation",
        endpoint_url=aws.endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@contextlib.contextmanager
def two_regions(log_path: Path) -> Iterator[EmbeddedAws]:
    """A moto server with the prod and staging stacks in two regions."""
    with EmbeddedAws(log_path=log_path) as aws:
        for region in ("eu-west-1", "eu-central-1"):
            client = cloudformation(aws, region)
            for stack in ("webchecker-prod", "webchecker-staging"):
                client.create_stack(StackName=stack, TemplateBody=STACK % f"{stack}@{region}")
        yield aws


@pytest.fixture(scope="module")
def read_only_account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedAws]:
    """One account for the tests that only read it (the server takes seconds to start)."""
    with two_regions(tmp_path_factory.mktemp("moto") / "moto.log") as aws:
        yield aws


@pytest.fixture
def account(tmp_path: Path) -> Iterator[EmbeddedAws]:
    """An account of the test's own, which it may change."""
    with two_regions(tmp_path / "moto.log") as aws:
        yield aws


def sam(
    account: EmbeddedAws, home: Path, region: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key != "SAM_CLI_CONFIG_ENV"
    }
    env.update(
        {
            **account.client_env(),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "HOME": str(home),
            "SAM_CLI_TELEMETRY": "0",
        }
    )
    return subprocess.run(
        [str(SAM), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("environment", "region"),
    [("prod", "eu-central-1"), ("prod", "eu-west-1"), ("staging", "eu-central-1")],
)
def test_sam_commands_use_the_environments_stack_in_the_configured_region(
    read_only_account: EmbeddedAws, tmp_path: Path, environment: str, region: str
) -> None:
    result = sam(
        read_only_account,
        tmp_path,
        region,
        "list",
        "stack-outputs",
        "--config-env",
        environment,
        "--output",
        "json",
    )
    assert result.returncode == 0, result.stderr
    outputs = {o["OutputKey"]: o["OutputValue"] for o in json.loads(result.stdout)}
    assert outputs == {"Where": f"webchecker-{environment}@{region}"}


def test_sam_delete_removes_the_environments_stack_in_the_configured_region_only(
    account: EmbeddedAws, tmp_path: Path
) -> None:
    result = sam(
        account, tmp_path, "eu-central-1", "delete", "--config-env", "staging", "--no-prompts"
    )
    assert result.returncode == 0, result.stderr + result.stdout

    def stacks(region: str) -> set[str]:
        client = cloudformation(account, region)
        live = client.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]
        return {s["StackName"] for s in live}

    assert stacks("eu-central-1") == {"webchecker-prod"}
    assert stacks("eu-west-1") == {"webchecker-prod", "webchecker-staging"}
