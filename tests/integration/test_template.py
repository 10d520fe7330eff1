"""template.yaml and samconfig.toml: the structure the deploy depends on, checked offline.

cfn-lint, `sam validate --lint` and checkov run in `make lint`; these tests pin what they
cannot know: the handlers and layers are where the template says, the MSK mapping and the
checker's retries are bounded, permissions name exact resources, the environment holds only
variables the package reads and no secret, and samconfig.toml sets every required parameter.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from tests.cfn import samconfig_overrides as overrides
from webchecker.sites import Site

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = {
    "SchedulerFunction": "scheduler",
    "CheckerFunction": "checker",
    "WriterFunction": "writer",
    "StatuspageFunction": "statuspage",
    "NotifierFunction": "notifier",
    "WebhookFunction": "webhook",
    "ApiFunction": "api",
}
LAYERS = {"WebcheckerLayer": "layers/webchecker/", "DependenciesLayer": "layers/dependencies/"}
# The pipeline's functions, and every function the template builds (the deploy's Setup too).
BUILT = {**FUNCTIONS, "SetupFunction": "setup"}
QUEUES = ("DeadLetterQueue", "AlertDeadLetterQueue")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, errors = decode(str(ROOT / "template.yaml"))
    assert errors == [], errors
    assert decoded is not None
    return dict(decoded)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def props(template: dict[str, Any], name: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][name]["Properties"]
    return properties


def function_env(template: dict[str, Any], name: str) -> dict[str, Any]:
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    variables.update(props(template, name)["Environment"]["Variables"])
    return variables


def makefile_targets(path: Path) -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_-]+):", path.read_text(), flags=re.MULTILINE))


# -- functions and layers ---------------------------------------------------------------------


def test_globals_run_python_313_on_arm64_with_tracing_powertools_and_both_layers(
    template: dict[str, Any],
) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    function = template["Globals"]["Function"]
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == "app.lambda_handler"
    assert function["Tracing"] == "Active"
    assert function["Layers"] == [{"Ref": "WebcheckerLayer"}, {"Ref": "DependenciesLayer"}]
    assert function["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "Webchecker"


@pytest.mark.parametrize(("logical_id", "name"), BUILT.items())
def test_each_function_is_built_by_its_makefile_from_its_handler(
    template: dict[str, Any], logical_id: str, name: str
) -> None:
    resource = template["Resources"][logical_id]
    assert resource["Type"] == "AWS::Serverless::Function"
    assert resource["Metadata"]["BuildMethod"] == "makefile"
    assert resource["Properties"]["CodeUri"] == f"functions/{name}/"
    folder = ROOT / "functions" / name
    assert (folder / "app.py").is_file()
    assert f"build-{logical_id}" in makefile_targets(folder / "Makefile")
    assert "lambda_handler" in (folder / "app.py").read_text()
    env = function_env(template, logical_id)
    assert env["POWERTOOLS_SERVICE_NAME"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}
    log_group = resource["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert props(template, log_group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize(("logical_id", "content_uri"), LAYERS.items())
def test_layers_are_cross_built_by_makefiles_for_arm64_and_python_313(
    template: dict[str, Any], logical_id: str, content_uri: str
) -> None:
    resource = template["Resources"][logical_id]
    assert resource["Type"] == "AWS::Serverless::LayerVersion"
    assert resource["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert resource["Properties"]["ContentUri"] == content_uri
    assert resource["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert resource["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert f"build-{logical_id}" in makefile_targets(ROOT / content_uri / "Makefile")


def test_dependencies_layer_installs_the_runtime_pins_as_arm64_wheels_only() -> None:
    makefile = (ROOT / "layers/dependencies/Makefile").read_text()
    for flag in (
        "--platform manylinux2014_aarch64",
        "--platform manylinux_2_28_aarch64",  # confluent-kafka's wheels
        "--only-binary=:all:",
        "--python-version 3.13",
        "--implementation cp",
        "--no-compile",
        '--target "$(ARTIFACTS_DIR)/python"',
        "requirements/runtime.txt",
    ):
        assert flag in makefile, flag


def test_checker_timeout_exceeds_the_longest_site_timeout_plus_kafka_delivery(
    template: dict[str, Any],
) -> None:
    checker = props(template, "CheckerFunction")
    delivery_s = int(checker["Environment"]["Variables"]["KAFKA_DELIVERY_TIMEOUT_MS"]) / 1000
    longest_site_timeout_s = 60  # DESIGN.md: timeout at most 60
    assert checker["Timeout"] > longest_site_timeout_s + delivery_s
    assert props(template, "SchedulerFunction")["Timeout"] < 60  # a tick ends within its minute


# -- events, retries, failure destinations ------------------------------------------------------


def test_scheduler_ticks_on_a_schedule_and_fails_to_the_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    scheduler = props(template, "SchedulerFunction")
    (tick,) = scheduler["Events"].values()
    assert tick["Type"] == "Schedule"
    assert tick["Properties"]["Schedule"] == {"Ref": "ScheduleExpression"}
    assert template["Parameters"]["ScheduleExpression"]["Default"] == "rate(1 minute)"
    assert scheduler["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    on_failure = scheduler["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}


def test_checker_async_invokes_have_bounded_retries_a_dlq_and_reserved_concurrency(
    template: dict[str, Any],
) -> None:
    checker = props(template, "CheckerFunction")
    config = checker["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == {"Ref": "CheckerMaxRetryAttempts"}
    assert template["Parameters"]["CheckerMaxRetryAttempts"]["AllowedValues"] == [0, 1, 2]
    assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
    }
    reserved = checker["ReservedConcurrentExecutions"]["Fn::If"]
    assert reserved[:2] == ["HasCheckerReservedConcurrency", {"Ref": "CheckerReservedConcurrency"}]


def test_writer_reads_msk_from_the_start_and_retries_while_the_topic_keeps_records(
    template: dict[str, Any],
) -> None:
    (event,) = props(template, "WriterFunction")["Events"].values()
    assert event["Type"] == "MSK"
    msk = event["Properties"]
    assert msk["Stream"]["Fn::If"][2] == {"Ref": "MskClusterArn"}
    assert msk["Topics"] == [{"Ref": "KafkaTopic"}]
    assert msk["StartingPosition"] == "TRIM_HORIZON"
    assert msk["BatchSize"] == {"Ref": "WriterBatchSize"}
    assert msk["MaximumBatchingWindowInSeconds"] == {"Ref": "WriterBatchWindowSeconds"}
    assert msk["BisectBatchOnFunctionError"] is False
    assert msk["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["WriterFailureBucket", "Arn"]
    }
    # -1 retries until the database is back, bounded by the records' age (the topic's
    # retention): an outage loses nothing, a batch never waits forever.
    retries = template["Parameters"][msk["MaximumRetryAttempts"]["Ref"]]
    assert (retries["Default"], retries["MinValue"], retries["MaxValue"]) == (-1, -1, 10000)
    assert msk["MaximumRecordAgeInSeconds"] == 604800  # Lambda's longest
    # Lambda offers retry controls for Kafka mappings in provisioned mode.
    assert set(msk["ProvisionedPollerConfig"]) == {"MinimumPollers", "MaximumPollers"}
    assert template["Parameters"]["WriterBatchSize"]["MaxValue"] == 10000


@pytest.mark.parametrize("queue", QUEUES)
def test_failure_queues_are_encrypted_and_keep_messages_14_days(
    template: dict[str, Any], queue: str
) -> None:
    assert props(template, queue)["SqsManagedSseEnabled"] is True
    assert props(template, queue)["MessageRetentionPeriod"] == 14 * 24 * 3600


# -- alarms and outputs -------------------------------------------------------------------------


def alarms_on(template: dict[str, Any], namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        alarm["Properties"]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["Namespace"] == namespace
        and alarm["Properties"]["MetricName"] == metric
    ]


def test_every_function_has_an_errors_alarm(template: dict[str, Any]) -> None:
    watched = {
        alarm["Dimensions"][0]["Value"]["Ref"]
        for alarm in alarms_on(template, "AWS/Lambda", "Errors")
    }
    assert watched == set(FUNCTIONS)


def test_each_failure_queue_alarms_when_not_empty(template: dict[str, Any]) -> None:
    alarms = alarms_on(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    watched = {alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for alarm in alarms}
    assert watched == set(QUEUES)
    assert all(alarm["Threshold"] == 1 for alarm in alarms)


def test_writer_lag_and_silence_alarms(template: dict[str, Any]) -> None:
    (lag,) = alarms_on(template, "AWS/Lambda", "OffsetLag")
    assert lag["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "WriterFunction"}}]
    (silence,) = alarms_on(template, "Webchecker", "ChecksInserted")
    assert silence["Dimensions"] == [
        {"Name": "service", "Value": {"Fn::Sub": "${AWS::StackName}-writer"}}
    ]
    assert silence["ComparisonOperator"] == "LessThanThreshold"
    assert silence["TreatMissingData"] == "breaching"  # no data at all is the failure
    assert silence["EvaluationPeriods"] == {"Ref": "NoChecksAlarmMinutes"}


def test_every_alarm_notifies_the_alarm_topic(template: dict[str, Any]) -> None:
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    pipeline = {
        "SchedulerErrorsAlarm",
        "CheckerErrorsAlarm",
        "WriterErrorsAlarm",
        "DeadLetterQueueAlarm",
        "WriterOffsetLagAlarm",
        "NoChecksWrittenAlarm",
    }
    assert pipeline <= set(alarms)
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_outputs_name_existing_resources(template: dict[str, Any]) -> None:
    # SAM names the writer's mapping <function><event>; the rest are template resources.
    known = set(template["Resources"]) | set(template["Parameters"]) | {"WriterFunctionMskChecks"}
    for output in template["Outputs"].values():
        text = json.dumps(output["Value"])
        named = re.findall(r'"Ref": "(\w+)"|"Fn::GetAtt": \["(\w+)"|\$\{(\w+)[.}]', text)
        assert named, output
        sub = output["Value"].get("Fn::Sub") if isinstance(output["Value"], dict) else None
        local = set(sub[1]) if isinstance(sub, list) else set()  # Fn::Sub's own variables
        for ref, attribute, substituted in named:
            assert (ref or attribute or substituted) in known | local, output


# -- permissions and secrets --------------------------------------------------------------------


# Exact resources, the GetBootstrapBrokers exception and the database login policy are
# checked on the rendered template for both deploy paths in test_deploy_template.py.


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE_KEY|CREDENTIAL", re.IGNORECASE)
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


@pytest.mark.parametrize("logical_id", BUILT)
def test_no_secret_in_any_environment(template: dict[str, Any], logical_id: str) -> None:
    for name, value in function_env(template, logical_id).items():
        if SECRET_NAME.search(name):
            assert name.endswith("_ARN"), name  # a pointer to the secret, never the secret
        if name == "DATABASE_URL":  # only for sam local invoke: it would carry the password
            assert value == ""
        assert not CREDENTIALS_IN_URL.search(json.dumps(value)), name


def test_no_parameter_carries_a_secret_default(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        if SECRET_NAME.search(name):
            assert name.endswith("Arn"), name
            assert parameter.get("Default", "") == ""
        assert parameter.get("NoEcho") is None  # nothing secret is a parameter at all


def package_env_names() -> set[str]:
    """The variable names the package reads through the config helpers and os.environ."""
    names: set[str] = set()
    for path in (ROOT / "layers/webchecker/webchecker").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names.add(first.value)
    return {name for name in names if re.fullmatch(r"[A-Z][A-Z0-9_]+", name)}


@pytest.mark.parametrize("logical_id", BUILT)
def test_environment_holds_only_variables_the_code_reads(
    template: dict[str, Any], logical_id: str
) -> None:
    read = package_env_names()
    for name in function_env(template, logical_id):
        assert name.startswith("POWERTOOLS_") or name in read, f"{name} is read nowhere"


def test_each_function_gets_what_its_settings_require(template: dict[str, Any]) -> None:
    assert {"SITES_PATH", "CHECKER_FUNCTION_NAME"} <= set(
        function_env(template, "SchedulerFunction")
    )
    checker = function_env(template, "CheckerFunction")
    assert checker["KAFKA_AUTH"] == "iam"
    assert checker["CHECKER_ALLOW_PRIVATE_TARGETS"] == "false"
    assert {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC"} <= set(checker)
    writer = function_env(template, "WriterFunction")
    assert {
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_USER",
        "DB_SCHEMA",
        "DB_SECRET_ARN",
        "DB_IAM_AUTH",
    } <= set(writer)


def test_example_site_is_valid_for_the_site_model(template: dict[str, Any]) -> None:
    site = props(template, "ExampleSite")
    assert site["Name"] == {"Fn::Sub": "${SitesPath}/example"}
    value = site["Value"]["Fn::Sub"].replace(
        "${ExampleSiteUrl}", template["Parameters"]["ExampleSiteUrl"]["Default"]
    )
    parsed = Site.from_dict(json.loads(value), default_id="example")
    assert parsed.id == "example"
    assert parsed.url == "https://example.com/"


# -- samconfig.toml ----------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["default", "staging", "prod"])
def test_samconfig_environment_deploys_from_zero_without_placeholders(
    template: dict[str, Any], environment: str
) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    shared = config[environment]["global"]["parameters"]
    assert shared["stack_name"].startswith("webchecker")
    # nested applications (infra/) need AUTO_EXPAND; the roles need IAM
    assert shared["capabilities"].split() == ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    for command, section in config[environment].items():
        # the region comes from the AWS configuration (or REGION=): no command pins another
        assert "region" not in section["parameters"], command
        assert "parameter_overrides" not in section["parameters"] or command == "global"
        assert "<" not in json.dumps(section), command
    given = overrides(environment)
    assert set(given) <= set(template["Parameters"])
    required = {name for name, p in template["Parameters"].items() if "Default" not in p}
    assert required <= set(given)
    # from zero: the network, the cluster and the database are the stack's own
    assert not {"VpcSubnetIds", "MskClusterArn", "DatabaseHost"} & set(given)
    assert (
        given["SitesPath"]
        == f"/webchecker/{'dev' if environment == 'default' else environment}/sites"
    )


def test_samconfig_stacks_are_distinct() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    stacks = [
        config[env]["global"]["parameters"]["stack_name"] for env in ("default", "staging", "prod")
    ]
    assert len(set(stacks)) == 3


# -- the makefile builds (sam build runs the same targets; the dependencies layer in make lint) --


@pytest.mark.parametrize(("logical_id", "name"), BUILT.items())
def test_function_makefile_puts_the_handler_in_the_artifacts_dir(
    tmp_path: Path, logical_id: str, name: str
) -> None:
    # SAM runs make in a scratch copy of the code directory: paths must not depend on it.
    subprocess.run(
        ["make", "--makefile", str(ROOT / "functions" / name / "Makefile"), f"build-{logical_id}"],
        cwd=tmp_path,
        env={**os.environ, "ARTIFACTS_DIR": str(tmp_path)},
        check=True,
        capture_output=True,
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["app.py"]
    assert (tmp_path / "app.py").read_text() == (ROOT / "functions" / name / "app.py").read_text()


def test_webchecker_layer_makefile_ships_the_package_without_bytecode(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    subprocess.run(
        ["make", "--makefile", str(ROOT / "layers/webchecker/Makefile"), "build-WebcheckerLayer"],
        cwd=tmp_path,
        env={**os.environ, "ARTIFACTS_DIR": str(artifacts), "PYTHON313": ""},
        check=True,
        capture_output=True,
    )
    package = artifacts / "python" / "webchecker"
    source = ROOT / "layers/webchecker/webchecker"
    shipped = {p.relative_to(package) for p in package.rglob("*.py")}
    assert shipped == {p.relative_to(source) for p in source.rglob("*.py")}
    assert not list(artifacts.rglob("__pycache__"))
    assert not list(artifacts.rglob("*.pyc"))


@pytest.mark.parametrize(
    ("pems", "shipped"), [([], []), (["rds-global-bundle.pem"], ["rds-global-bundle.pem"])]
)
def test_webchecker_layer_builds_with_or_without_ca_bundles(
    tmp_path: Path, pems: list[str], shipped: list[str]
) -> None:
    # The Makefile reads certs/ next to itself: build a copy of the layer's folder whose
    # certs/ holds only a note (no .pem), or one bundle.
    layers = tmp_path / "layers"
    (layers / "webchecker" / "certs").mkdir(parents=True)
    (layers / "precompile.mk").write_text((ROOT / "layers/precompile.mk").read_text())
    makefile = layers / "webchecker" / "Makefile"
    makefile.write_text((ROOT / "layers/webchecker/Makefile").read_text())
    (layers / "webchecker" / "webchecker").symlink_to(ROOT / "layers/webchecker/webchecker")
    (layers / "webchecker" / "certs" / "README.txt").write_text("put CA bundles here\n")
    for pem in pems:
        (layers / "webchecker" / "certs" / pem).write_text("-----BEGIN CERTIFICATE-----\n")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    subprocess.run(
        ["make", "--makefile", str(makefile), "build-WebcheckerLayer"],
        cwd=tmp_path,
        env={**os.environ, "ARTIFACTS_DIR": str(artifacts), "PYTHON313": ""},
        check=True,
        capture_output=True,
    )
    assert sorted(p.name for p in (artifacts / "certs").iterdir()) == shipped
    assert (artifacts / "python" / "webchecker" / "__init__.py").is_file()


# -- status page --------------------------------------------------------------------------------


def test_status_bucket_is_private_encrypted_and_versioned(template: dict[str, Any]) -> None:
    bucket = props(template, "StatusBucket")
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_only_the_distribution_reads_the_bucket_through_origin_access_control(
    template: dict[str, Any],
) -> None:
    allow, deny = props(template, "StatusBucketPolicy")["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source.endswith(":distribution/${StatusPageDistribution}")
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    config = props(template, "StatusPageDistribution")["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {
        "Fn::GetAtt": ["StatusPageOriginAccessControl", "Id"]
    }
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    # the custom domain and its certificate are both conditional on the parameters
    assert config["Aliases"]["Fn::If"][0] == "HasStatusPageDomain"
    assert config["ViewerCertificate"]["Fn::If"][1]["AcmCertificateArn"] == {
        "Ref": "StatusPageCertificateArn"
    }


def test_statuspage_runs_every_five_minutes_and_writes_only_into_its_bucket(
    template: dict[str, Any],
) -> None:
    function = props(template, "StatuspageFunction")
    (event,) = function["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Ref": "StatusPageSchedule"}
    assert template["Parameters"]["StatusPageSchedule"]["Default"] == "rate(5 minutes)"
    env = function_env(template, "StatuspageFunction")
    assert env["STATUS_BUCKET"] == {"Ref": "StatusBucket"}
    writer = function_env(template, "WriterFunction")
    assert {name: env[name] for name in writer if name.startswith("DB_")} == {
        name: value for name, value in writer.items() if name.startswith("DB_")
    }
    assert function["VpcConfig"] == props(template, "WriterFunction")["VpcConfig"]
    assert template["Resources"]["StatuspageFunction"]["DependsOn"] == "Setup"
    policies = function["Policies"]
    assert {"Ref": "DatabaseClientPolicy"} in policies  # logs in like every database client
    owned = [s for policy in policies if "Statement" in policy for s in policy["Statement"]]
    writes = [s for s in owned if s["Action"] == "s3:PutObject"]
    assert writes == [
        {
            "Sid": "WritePage",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": {"Fn::Sub": "${StatusBucket.Arn}/*"},
        }
    ]


# -- site alerts ------------------------------------------------------------------------------


def test_site_alerts_go_to_their_own_encrypted_topic(template: dict[str, Any]) -> None:
    assert props(template, "AlertTopic")["KmsMasterKeyId"] == "alias/aws/sns"
    notifier = function_env(template, "NotifierFunction")
    assert notifier["ALERT_TOPIC_ARN"] == {"Ref": "AlertTopic"}
    assert {"DB_HOST", "DB_SECRET_ARN", "DB_IAM_AUTH", "ALERT_REMINDER_MINUTES"} <= set(notifier)
    policies = props(template, "NotifierFunction")["Policies"]
    assert {"Ref": "DatabaseClientPolicy"} in policies
    assert {
        "SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["AlertTopic", "TopicName"]}}
    } in policies
    email = template["Resources"]["AlertEmailSubscription"]
    assert email["Condition"] == "HasAlertEmail"
    assert email["Properties"]["TopicArn"] == {"Ref": "AlertTopic"}


def test_the_notifier_runs_every_minute_one_at_a_time_with_a_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    notifier = props(template, "NotifierFunction")
    assert notifier["Events"]["EveryMinute"]["Properties"]["Schedule"] == "rate(1 minute)"
    assert notifier["ReservedConcurrentExecutions"] == 1
    assert notifier["DeadLetterQueue"]["TargetArn"] == {
        "Fn::GetAtt": ["AlertDeadLetterQueue", "Arn"]
    }
    assert notifier["Timeout"] <= 60  # done before the next run
    assert "VpcConfig" in notifier  # the database is in the VPC
    assert template["Resources"]["NotifierFunction"]["DependsOn"] == "Setup"


def test_the_writer_gets_the_certificate_warning_days(template: dict[str, Any]) -> None:
    assert function_env(template, "WriterFunction")["CERT_WARNING_DAYS"] == {
        "Ref": "CertWarningDays"
    }


def test_the_webhook_reads_its_url_from_a_securestring_only(template: dict[str, Any]) -> None:
    webhook = template["Resources"]["WebhookFunction"]
    assert webhook["Condition"] == "HasAlertWebhook"
    env = function_env(template, "WebhookFunction")
    assert "WEBHOOK_URL" not in env
    assert env["WEBHOOK_URL_PARAMETER"] == {"Ref": "AlertWebhookUrlParameter"}
    assert webhook["Properties"]["Events"]["Alerts"]["Properties"]["Topic"] == {"Ref": "AlertTopic"}
    assert template["Parameters"]["AlertWebhookFlavour"]["AllowedValues"] == [
        "none",
        "slack",
        "discord",
        "teams",
    ]
