"""`webchecker smoke` (make smoke) against a "deployed" stack made of the real parts here.

CloudFormation and Parameter Store are moto's server; the stack's scheduler is the real
functions/scheduler/app.py behind the local Lambda Invoke API, which also serves the
checker it fans out to. The command reaches both through the standard endpoint variables,
as it reaches AWS after a deploy.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from webchecker.cli import main
from webchecker.exceptions import SmokeCheckFailed
from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.local.embedded.lambda_api import FunctionSpec, LambdaApi
from webchecker.local.embedded.network import free_port
from webchecker.provision.preflight import load_config
from webchecker.provision.smoke import (
    ROLLBACK,
    check_summary,
    run_smoke,
    scheduled_event,
    scheduler_function,
)

ROOT = Path(__file__).resolve().parents[2]
SITES_PATH = "/webchecker/smoke/sites"
CHECKER_HANDLER = (
    "def lambda_handler(event, context):\n    return {'checked': len(event['sites'])}\n"
)


@dataclass(frozen=True)
class Deployed:
    """The endpoints of the fake account and the stacks in it."""

    aws: EmbeddedAws
    lambda_endpoint: str

    def client(self, service: str) -> Any:
        endpoint = self.lambda_endpoint if service == "lambda" else self.aws.endpoint_url
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=self.aws.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def create_stack(cloudformation: Any, name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {
            "Marker": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{name}/marker", "Type": "String", "Value": name},
            }
        },
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    tmp = tmp_path_factory.mktemp("smoke")
    (tmp / "checker.py").write_text(CHECKER_HANDLER)
    with EmbeddedAws(log_path=tmp / "moto.log") as aws:
        lambda_port = free_port()
        lambda_endpoint = f"http://127.0.0.1:{lambda_port}"
        scheduler = ROOT / "functions/scheduler/app.py"
        api = LambdaApi(
            [
                FunctionSpec(name="webchecker-smoke-scheduler", path=scheduler),
                FunctionSpec(name="webchecker-smoke-checker", path=tmp / "checker.py"),
                # Deployed pointing at a checker that does not exist: every fan-out fails.
                FunctionSpec(
                    name="webchecker-broken-scheduler",
                    path=scheduler,
                    env={"CHECKER_FUNCTION_NAME": "webchecker-missing-checker"},
                ),
            ],
            env={
                **aws.client_env(),
                "AWS_ENDPOINT_URL_LAMBDA": lambda_endpoint,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_NAMESPACE": "Webchecker",
                "SITES_PATH": SITES_PATH,
                "SITES_CACHE_SECONDS": "0",
                "CHECKER_FUNCTION_NAME": "webchecker-smoke-checker",
            },
            port=lambda_port,
            log_dir=tmp / "logs",
        )
        api.start()
        try:
            account = Deployed(aws=aws, lambda_endpoint=lambda_endpoint)
            ssm = account.client("ssm")
            for site_id in ("shop", "blog"):
                ssm.put_parameter(
                    Name=f"{SITES_PATH}/{site_id}",
                    Type="String",
                    Value=json.dumps({"url": f"https://{site_id}.example.com/", "interval": 60}),
                )
            cloudformation = account.client("cloudformation")
            create_stack(
                cloudformation,
                "webchecker-smoke",
                {"SchedulerFunctionName": "webchecker-smoke-scheduler"},
            )
            create_stack(
                cloudformation,
                "webchecker-broken",
                {"SchedulerFunctionName": "webchecker-broken-scheduler"},
            )
            create_stack(cloudformation, "webchecker-no-outputs", {})
            yield account
        finally:
            api.stop()


@pytest.fixture
def account_env(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Deployed:
    """The CLI's environment: the fake account's endpoints, as AWS_* variables."""
    for name, value in deployed.aws.client_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", deployed.lambda_endpoint)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return deployed


def run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["smoke", *args])
    return code, out.getvalue()


class TestDeployedStack:
    def test_a_healthy_stack_runs_one_tick_of_its_sites(self, deployed: Deployed) -> None:
        now = datetime(2026, 12, 2, 17, 3, 41, tzinfo=UTC)
        summary = run_smoke(
            "webchecker-smoke",
            cloudformation=deployed.client("cloudformation"),
            lambda_client=deployed.client("lambda"),
            now=now,
        )
        assert summary["tick"] == "2026-12-02T17:03:00Z"
        assert (summary["sites"], summary["due"], summary["invocations"]) == (2, 2, 1)
        assert summary["failed_invocations"] == 0

    def test_the_command_passes_and_prints_the_summary(self, account_env: Deployed) -> None:
        code, out = run_cli("--stack-name", "webchecker-smoke")
        assert code == 0, out
        assert "ok: stack webchecker-smoke" in out
        assert "sites 2, due 2, invocations 1" in out

    def test_a_scheduler_that_cannot_reach_its_checker_fails_with_how_to_roll_back(
        self, account_env: Deployed
    ) -> None:
        code, out = run_cli("--stack-name", "webchecker-broken")
        assert code == 1
        assert "FAILED: webchecker-broken-scheduler failed: FanoutError" in out
        assert "make deploy ENV=" in out
        assert "continue-update-rollback --stack-name webchecker-broken" in out

    def test_a_missing_stack_fails_naming_it(self, account_env: Deployed) -> None:
        code, out = run_cli("--stack-name", "webchecker-never-deployed")
        assert code == 1
        assert "stack webchecker-never-deployed:" in out
        assert "How to roll back" in out

    def test_a_stack_without_the_scheduler_output_fails(self, account_env: Deployed) -> None:
        code, out = run_cli("--stack-name", "webchecker-no-outputs")
        assert code == 1
        assert "has no output SchedulerFunctionName" in out

    def test_the_stack_name_comes_from_the_samconfig_environments_deploy_section(
        self, account_env: Deployed, tmp_path: Path
    ) -> None:
        config = tmp_path / "samconfig.toml"
        config.write_text(
            'version = 0.1\n[ci.global.parameters]\nstack_name = "ignored"\n'
            '[ci.deploy.parameters]\nstack_name = "webchecker-smoke"\n'
        )
        code, out = run_cli("--config-env", "ci", "--config-file", str(config))
        assert code == 0, out
        assert "stack webchecker-smoke" in out


def stubbed_cloudformation(stack: dict[str, Any]) -> tuple[Any, Stubber]:
    """A real botocore client answering one DescribeStacks (states moto cannot produce)."""
    client = boto3.client(
        "cloudformation",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    base = {"StackName": "s", "CreationTime": datetime(2026, 1, 1, tzinfo=UTC)}
    stubber.add_response("describe_stacks", {"Stacks": [{**base, **stack}]})
    stubber.activate()
    return client, stubber


class TestStackState:
    @pytest.mark.parametrize(
        "status", ["UPDATE_ROLLBACK_COMPLETE", "UPDATE_IN_PROGRESS", "ROLLBACK_COMPLETE"]
    )
    def test_a_stack_whose_deploy_did_not_complete_fails(self, status: str) -> None:
        client, stubber = stubbed_cloudformation(
            {"StackStatus": status, "StackStatusReason": "resource X failed"}
        )
        with pytest.raises(SmokeCheckFailed, match=f"is {status} \\(resource X failed\\)"):
            scheduler_function(client, "s")
        stubber.assert_no_pending_responses()

    def test_an_updated_stack_gives_its_scheduler(self) -> None:
        client, _ = stubbed_cloudformation(
            {
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": [{"OutputKey": "SchedulerFunctionName", "OutputValue": "fn"}],
            }
        )
        assert scheduler_function(client, "s") == "fn"


GOOD_COUNTS = ("sites", "due", "invocations", "invalid", "failed_invocations")


class TestSummary:
    """The scheduler's answer is checked field by field; hostile answers fail clearly."""

    EVENT = scheduled_event(datetime(2026, 12, 2, 17, 3, tzinfo=UTC))
    GOOD: dict[str, Any] = {
        "tick": "2026-12-02T17:03:00Z",
        "sites": 3,
        "due": 2,
        "invocations": 1,
        "invalid": 0,
        "oversized": 0,
        "failed_invocations": 0,
    }

    def test_a_well_formed_summary_passes(self) -> None:
        assert check_summary(dict(self.GOOD), self.EVENT)["due"] == 2

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("sites", True),
            ("due", -1),
            ("invocations", float("nan")),
            ("invalid", "0"),
            ("failed_invocations", None),
            ("sites", "\ud800"),
            ("due", "x" * 100_000),
        ],
    )
    def test_a_count_of_the_wrong_kind_names_the_field(self, field: str, value: Any) -> None:
        with pytest.raises(SmokeCheckFailed, match=f"summary: {field} is") as caught:
            check_summary({**self.GOOD, field: value}, self.EVENT)
        assert len(str(caught.value)) < 400  # a huge value is cut, never echoed whole

    @pytest.mark.parametrize("answer", [None, [], "ok", 3, {"errorMessage": "x"}])
    def test_an_answer_that_is_not_the_ticks_summary_fails(self, answer: Any) -> None:
        with pytest.raises(SmokeCheckFailed):
            check_summary(answer, self.EVENT)

    def test_another_tick_fails(self) -> None:
        with pytest.raises(SmokeCheckFailed, match="ran tick '2026-12-02T17:04:00Z'"):
            check_summary({**self.GOOD, "tick": "2026-12-02T17:04:00Z"}, self.EVENT)

    def test_failed_invocations_fail_the_smoke(self) -> None:
        with pytest.raises(SmokeCheckFailed, match="could not invoke the checker 2 time"):
            check_summary({**self.GOOD, "failed_invocations": 2}, self.EVENT)

    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from([*GOOD_COUNTS, "tick", "errorMessage"]) | st.text(),
                    inner,
                    max_size=8,
                )
            ),
            max_leaves=20,
        )
    )
    def test_any_answer_passes_only_as_a_summary_or_fails_clearly(self, answer: Any) -> None:
        try:
            checked = check_summary(answer, self.EVENT)
        except SmokeCheckFailed as error:
            assert 0 < len(str(error)) < 400
        else:
            assert checked["tick"] == self.EVENT["time"]
            assert all(type(checked[key]) is int and checked[key] >= 0 for key in GOOD_COUNTS)
            assert checked["failed_invocations"] == 0

    @given(st.dictionaries(st.sampled_from(sorted(GOOD_COUNTS)), st.integers(0, 10**9)))
    def test_valid_counts_pass_whatever_their_size(self, counts: dict[str, int]) -> None:
        answer = {**self.GOOD, **counts, "failed_invocations": 0}
        assert check_summary(answer, self.EVENT) == answer

    def test_the_event_is_the_schedules_shape_for_the_minute(self) -> None:
        event = scheduled_event(datetime(2026, 12, 2, 18, 3, 59, 999, tzinfo=UTC))
        assert event["time"] == "2026-12-02T18:03:00Z"
        assert event["detail-type"] == "Scheduled Event"
        assert event["source"] == "aws.events"


class TestSamconfig:
    def test_the_repositorys_environments_name_their_stacks(self) -> None:
        path = ROOT / "samconfig.toml"
        assert load_config(path, "staging").stack_name == "webchecker-staging"
        assert load_config(path, "prod").stack_name == "webchecker-prod"

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[ci.global.parameters]\nregion = 'eu-west-1'\n", "has no stack_name"),
            ("[ci]\nglobal = 3\n", "has no stack_name"),
            ("ci = 'x'\n", "no environment 'ci'"),
            ("[ci.global.parameters\n", "samconfig.toml"),
        ],
    )
    def test_a_broken_config_is_refused_before_any_call(
        self, tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "samconfig.toml"
        path.write_text(text)
        # No endpoint and no credentials: a call to AWS would fail differently.
        assert main(["smoke", "--config-env", "ci", "--config-file", str(path)]) == 2
        assert message in capsys.readouterr().err

    def test_the_rollback_text_names_the_environment_and_stack(self) -> None:
        text = ROLLBACK.format(env="prod", stack="webchecker-prod")
        assert "make deploy ENV=prod" in text
        assert "--stack-name webchecker-prod" in text
