"""The deploy, rendered offline for both paths (from zero; bring your own) with each
samconfig.toml environment's parameters: the wiring each would create.

The functions reach the RDS Proxy, never the instance; security groups admit only the
needed port from the needed group; nothing is public; the database password exists only in
Secrets Manager; IAM statements name exact resources; the writer retries as long as the
topic keeps records and keeps whole batches after that. cfn-lint, `sam validate --lint`
and checkov (make lint) check the templates' syntax; these tests check what they mean.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cfn import ENVIRONMENTS, ROOT, load, render, rule_failures, samconfig_overrides

BRING_YOUR_OWN = {
    "VpcSubnetIds": "subnet-0a1b2c3d4e5f60718,subnet-0f1e2d3c4b5a60718",
    "VpcSecurityGroupIds": "sg-0123456789abcdef0",
    "MskClusterArn": "arn:aws:kafka:eu-west-1:123456789012:cluster/shared/0b1c2d3e-1111-2222-3",
    "DatabaseHost": "shared.proxy-abcdefghijkl.eu-west-1.rds.amazonaws.com",
    "DatabaseAuth": "iam",
    "DatabaseResourceId": "prx-0123456789abcdef0",
}
PATHS = {"from-zero": {}, "bring-your-own": BRING_YOUR_OWN}
CASES = [(env, path) for env in ENVIRONMENTS for path in PATHS]
PROXY_ENDPOINT = {"Fn::GetAtt": ["Database", "Outputs.ProxyEndpoint"]}
INFRA = ("network", "kafka", "database")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def infra() -> dict[str, dict[str, Any]]:
    return {name: load(ROOT / "infra" / f"{name}.yaml") for name in INFRA}


def stack(template: dict[str, Any], environment: str, path: str, **extra: str) -> dict[str, Any]:
    return render(template, {**samconfig_overrides(environment), **PATHS[path], **extra})


def of_type(rendered: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in rendered["Resources"].items() if r["Type"] == kind}


def functions(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in of_type(rendered, "AWS::Serverless::Function").items()
    }


def env(properties: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = properties.get("Environment", {}).get("Variables", {})
    return variables


def statements(rendered: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement: SAM function policies, roles' inline policies, managed policies."""
    for name, resource in rendered["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [p for p in properties.get("Policies", []) if isinstance(p, dict)]
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for statement in document.get("PolicyDocument", document).get("Statement", []):
                yield name, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- both paths, every environment -------------------------------------------------------------


@pytest.mark.parametrize(("environment", "path"), CASES)
def test_every_environment_passes_the_rules_on_both_paths(
    template: dict[str, Any], environment: str, path: str
) -> None:
    assert rule_failures(template, {**samconfig_overrides(environment), **PATHS[path]}) == []


@pytest.mark.parametrize(("environment", "path"), CASES)
def test_nested_stacks_exist_only_on_the_from_zero_path(
    template: dict[str, Any], environment: str, path: str
) -> None:
    nested = of_type(stack(template, environment, path), "AWS::Serverless::Application")
    if path == "from-zero":
        assert {n: r["Properties"]["Location"] for n, r in nested.items()} == {
            "Network": "infra/network.yaml",
            "Kafka": "infra/kafka.yaml",
            "Database": "infra/database.yaml",
        }
    else:
        assert nested == {}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_database_clients_reach_the_proxy_with_iam_never_the_instance(
    template: dict[str, Any], environment: str
) -> None:
    rendered = stack(template, environment, "from-zero")
    clients = {name: env(p) for name, p in functions(rendered).items() if "DB_HOST" in env(p)}
    assert {"WriterFunction", "SetupFunction"} <= set(clients)
    for name, variables in clients.items():
        assert variables["DB_HOST"] == PROXY_ENDPOINT, name
        assert variables["DB_IAM_AUTH"] == "true", name
        assert variables["DB_SECRET_ARN"] == "", name
        assert variables["DB_SSL_ROOT_CERT"] == "", name  # the proxy's certificate is public CA
    # the instance's address is an output of the nested stack that nothing in the app reads
    assert "InstanceEndpoint" not in json.dumps(rendered["Resources"])
    (policy,) = of_type(rendered, "AWS::IAM::ManagedPolicy").values()
    (login,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert login["Action"] == "rds-db:connect"
    assert login["Resource"]["Fn::Sub"][1] == {
        "ResourceId": {"Fn::GetAtt": ["Database", "Outputs.ProxyResourceId"]}
    }
    assert login["Resource"]["Fn::Sub"][0].endswith(":dbuser:${ResourceId}/${DatabaseUser}")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_your_own_pieces_are_used_as_given(template: dict[str, Any], environment: str) -> None:
    rendered = stack(template, environment, "bring-your-own")
    for name, properties in functions(rendered).items():
        if "VpcConfig" in properties:
            assert properties["VpcConfig"] == {
                "SubnetIds": {"Ref": "VpcSubnetIds"},
                "SecurityGroupIds": {"Ref": "VpcSecurityGroupIds"},
            }, name
        if "DB_HOST" in env(properties):
            assert env(properties)["DB_HOST"] == {"Ref": "DatabaseHost"}, name
            assert env(properties)["DB_SSL_ROOT_CERT"] == {"Ref": "DatabaseSslRootCert"}
    assert rendered["Resources"]["WriterFunction"]["Properties"]["Events"]["MskChecks"][
        "Properties"
    ]["Stream"] == {"Ref": "MskClusterArn"}


@pytest.mark.parametrize(("environment", "path"), CASES)
def test_every_vpc_function_shares_one_network_wiring(
    template: dict[str, Any], environment: str, path: str
) -> None:
    rendered = stack(template, environment, path)
    wirings = [json.dumps(p["VpcConfig"]) for p in functions(rendered).values() if "VpcConfig" in p]
    assert len(wirings) >= 3  # checker, writer, setup (and any function added later)
    assert len(set(wirings)) == 1
    assert "VpcConfig" not in functions(rendered)["SchedulerFunction"]  # AWS APIs only


def test_secret_login_and_its_customer_managed_key(template: dict[str, Any]) -> None:
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    extra = {"DatabaseAuth": "secret", "DatabaseSecretArn": secret, "DatabaseSecretKmsKeyArn": key}
    rendered = stack(template, "default", "bring-your-own", **extra)
    (policy,) = of_type(rendered, "AWS::IAM::ManagedPolicy").values()
    by_sid = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(by_sid) == {"DatabasePassword", "DatabasePasswordKey"}
    assert by_sid["DatabasePassword"]["Resource"] == {"Ref": "DatabaseSecretArn"}
    assert by_sid["DatabasePasswordKey"]["Action"] == "kms:Decrypt"
    assert by_sid["DatabasePasswordKey"]["Resource"] == {"Ref": "DatabaseSecretKmsKeyArn"}
    assert "kms:ViaService" in by_sid["DatabasePasswordKey"]["Condition"]["StringEquals"]
    writer = env(functions(rendered)["WriterFunction"])
    assert (writer["DB_SECRET_ARN"], writer["DB_IAM_AUTH"]) == (
        {"Ref": "DatabaseSecretArn"},
        "false",
    )
    without_key = stack(
        template, "default", "bring-your-own", **{**extra, "DatabaseSecretKmsKeyArn": ""}
    )
    (policy,) = of_type(without_key, "AWS::IAM::ManagedPolicy").values()
    assert [s["Sid"] for s in policy["Properties"]["PolicyDocument"]["Statement"]] == [
        "DatabasePassword"
    ]


# -- IAM ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("environment", "path"), CASES)
def test_statements_name_exact_resources(
    template: dict[str, Any], environment: str, path: str
) -> None:
    found = list(statements(stack(template, environment, path)))
    assert len(found) >= 12
    for owner, statement in found:
        assert statement["Effect"] == "Allow"
        actions = as_list(statement["Action"])
        assert all("*" not in action for action in actions), (owner, actions)
        if actions == ["kafka:GetBootstrapBrokers"]:
            assert statement["Resource"] == "*"  # it supports no resource type
            continue
        if all(action.startswith("ec2:Describe") for action in actions):
            continue  # read-only, and EC2 offers no resource-level scope for them
        for resource in as_list(statement["Resource"]):
            text = json.dumps(resource)
            # the objects below the sites path, the failed batches and the status page's files
            for allowed in (
                "parameter${SitesPath}/*",
                "${WriterFailureBucket.Arn}/*",
                "${StatusBucket.Arn}/*",
            ):
                text = text.replace(allowed, "")
            assert "*" not in text, (owner, text)


def test_get_bootstrap_brokers_has_its_own_statement_on_star(template: dict[str, Any]) -> None:
    rendered = stack(template, "default", "from-zero")
    owners = [
        owner
        for owner, s in statements(rendered)
        if "kafka:GetBootstrapBrokers" in as_list(s["Action"])
    ]
    assert sorted(owners) == ["SetupFunction", "WriterRole"]
    for owner, statement in statements(rendered):
        if "kafka:GetBootstrapBrokers" in as_list(statement["Action"]):
            assert statement["Action"] == "kafka:GetBootstrapBrokers", owner


def test_checker_publishes_but_no_longer_creates_the_topic(template: dict[str, Any]) -> None:
    rendered = stack(template, "default", "from-zero")
    checker_actions = {
        action
        for owner, s in statements(rendered)
        if owner == "CheckerFunction"
        for action in as_list(s["Action"])
    }
    assert "kafka-cluster:CreateTopic" not in checker_actions
    assert {"kafka-cluster:WriteData", "kafka-cluster:Connect"} <= checker_actions
    checker = env(functions(rendered)["CheckerFunction"])
    assert checker["KAFKA_CREATE_TOPIC"] == "false"
    assert checker["KAFKA_BOOTSTRAP_SERVERS"] == {"Fn::GetAtt": ["Setup", "BootstrapServers"]}


# -- deploy order: topic and schema before the writer -----------------------------------------


def test_setup_runs_before_the_writer_and_on_every_new_package(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["WriterFunction"]["DependsOn"] == "Setup"
    setup = resources["Setup"]["Properties"]
    assert setup["ServiceToken"] == {"Fn::GetAtt": ["SetupFunction", "Arn"]}
    assert setup["PackageVersion"] == {"Ref": "WebcheckerLayer"}  # new code: migrate again
    assert setup["Topic"] == {"Ref": "KafkaTopic"}
    assert 60 <= setup["ServiceTimeout"] <= 3600
    setup_env = resources["SetupFunction"]["Properties"]["Environment"]["Variables"]
    assert setup_env["KAFKA_TOPIC_PARTITIONS"] == {"Ref": "KafkaTopicPartitions"}
    assert (ROOT / "functions/setup/app.py").is_file()


def test_writer_retries_as_long_as_the_topic_keeps_records_then_keeps_whole_batches(
    template: dict[str, Any],
) -> None:
    rendered = stack(template, "default", "from-zero")
    msk = rendered["Resources"]["WriterFunction"]["Properties"]["Events"]["MskChecks"]["Properties"]
    assert rendered["Parameters"]["WriterMaxRetryAttempts"] == "-1"
    assert msk["MaximumRetryAttempts"] == {"Ref": "WriterMaxRetryAttempts"}
    retention_ms = env(functions(rendered)["SetupFunction"])["KAFKA_TOPIC_RETENTION_MS"]
    # the mapping gives a batch up (to the bucket) before retention could delete it
    assert msk["MaximumRecordAgeInSeconds"] == 7 * 24 * 3600  # Lambda's longest
    assert int(retention_ms) >= msk["MaximumRecordAgeInSeconds"] * 1000 + 24 * 3600 * 1000
    assert msk["BisectBatchOnFunctionError"] is False  # splitting cannot help an outage
    assert msk["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["WriterFailureBucket", "Arn"]
    }
    bucket = rendered["Resources"]["WriterFailureBucket"]
    assert bucket["DeletionPolicy"] == "Retain"  # holds checks that exist nowhere else
    (notify,) = bucket["Properties"]["NotificationConfiguration"]["TopicConfigurations"]
    assert notify == {"Event": "s3:ObjectCreated:*", "Topic": {"Ref": "AlarmTopic"}}
    writer = {
        a: s["Resource"]
        for o, s in statements(rendered)
        if o == "WriterRole"
        for a in as_list(s["Action"])
    }
    assert writer["s3:PutObject"] == {"Fn::Sub": "${WriterFailureBucket.Arn}/*"}
    assert writer["s3:ListBucket"] == {"Fn::GetAtt": ["WriterFailureBucket", "Arn"]}


@pytest.mark.parametrize("minimum", range(1, 11))
def test_rules_refuse_fewer_maximum_than_minimum_pollers(
    template: dict[str, Any], minimum: int
) -> None:
    for maximum in range(1, 13):
        failures = rule_failures(
            template,
            {"WriterMinimumPollers": str(minimum), "WriterMaximumPollers": str(maximum)},
        )
        assert bool(failures) == (maximum < minimum), (minimum, maximum, failures)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"VpcSubnetIds": "subnet-0a1b2c3d"}, "VpcSecurityGroupIds"),
        ({"VpcSubnetIds": "subnet-0a1b2c3d", "VpcSecurityGroupIds": "sg-0a1b2c3d"}, "VpcId"),
        ({"DatabaseHost": "db.example.com", "DatabaseAuth": "secret"}, "DatabaseSecretArn"),
        ({"DatabaseHost": "db.example.com", "DatabaseAuth": "iam"}, "DatabaseResourceId"),
    ],
)
def test_rules_name_what_bring_your_own_is_missing(
    template: dict[str, Any], overrides: dict[str, str], named: str
) -> None:
    failures = rule_failures(template, overrides)
    assert any(named in failure for failure in failures), failures


# -- the infrastructure stacks ------------------------------------------------------------------


def ingress(resources: dict[str, Any], group: str) -> list[dict[str, Any]]:
    rules = list(resources[group]["Properties"].get("SecurityGroupIngress", []))
    for resource in resources.values():
        standalone = resource["Type"] == "AWS::EC2::SecurityGroupIngress"
        if standalone and resource["Properties"]["GroupId"] == {"Ref": group}:
            rules.append(resource["Properties"])
    return rules


def port_and_source(rule: dict[str, Any]) -> tuple[int, int, Any]:
    source = rule.get("SourceSecurityGroupId") or rule.get("CidrIp")
    return (rule["FromPort"], rule["ToPort"], source)


def test_security_groups_admit_only_the_needed_port_from_the_needed_group(
    infra: dict[str, dict[str, Any]],
) -> None:
    database = render(
        infra["database"],
        {"StackLabel": "s", "VpcId": "vpc-1", "SubnetIds": "a,b", "ClientSecurityGroupId": "sg-1"},
    )["Resources"]
    assert [port_and_source(r) for r in ingress(database, "InstanceSecurityGroup")] == [
        (5432, 5432, {"Ref": "ProxySecurityGroup"})
    ]
    assert [port_and_source(r) for r in ingress(database, "ProxySecurityGroup")] == [
        (5432, 5432, {"Ref": "ClientSecurityGroupId"})
    ]
    assert database["ProxyToInstance"]["Properties"]["DestinationSecurityGroupId"] == {
        "Ref": "InstanceSecurityGroup"
    }
    kafka = render(
        infra["kafka"],
        {"StackLabel": "s", "VpcId": "vpc-1", "SubnetIds": "a,b", "ClientSecurityGroupId": "sg-1"},
    )["Resources"]
    assert sorted(
        map(str, (port_and_source(r) for r in ingress(kafka, "KafkaSecurityGroup")))
    ) == sorted(
        map(
            str,
            [
                (9098, 9098, {"Ref": "ClientSecurityGroupId"}),
                (9098, 9098, {"Ref": "KafkaSecurityGroup"}),
            ],
        )
    )
    network = render(infra["network"], {"StackLabel": "s", "InterfaceEndpoints": "true"})[
        "Resources"
    ]
    assert ingress(network, "FunctionSecurityGroup") == []
    assert [port_and_source(r) for r in ingress(network, "EndpointSecurityGroup")] == [
        (443, 443, {"Ref": "VpcCidr"})
    ]


def test_nothing_is_public(template: dict[str, Any], infra: dict[str, dict[str, Any]]) -> None:
    for name, document in [("template", template), *infra.items()]:
        for logical_id, resource in document["Resources"].items():
            properties = resource.get("Properties", {})
            for rule in properties.get("SecurityGroupIngress", []):
                assert rule.get("CidrIp") != "0.0.0.0/0", (name, logical_id)
            if resource["Type"] == "AWS::EC2::SecurityGroupIngress":
                assert properties.get("CidrIp") != "0.0.0.0/0", (name, logical_id)
            if resource["Type"] == "AWS::EC2::Subnet":
                assert properties["MapPublicIpOnLaunch"] is False, logical_id
            assert resource["Type"] not in {"AWS::EC2::Instance", "AWS::Lambda::Url"}
    instance = infra["database"]["Resources"]["Instance"]["Properties"]
    assert instance["PubliclyAccessible"] is False
    assert instance["StorageEncrypted"] is True
    assert infra["database"]["Resources"]["Proxy"]["Properties"]["RequireTLS"] is True
    block = template["Resources"]["WriterFailureBucket"]["Properties"][
        "PublicAccessBlockConfiguration"
    ]
    assert set(block.values()) == {True}
    assert len(block) == 4


def test_the_database_password_exists_only_in_secrets_manager(
    infra: dict[str, dict[str, Any]],
) -> None:
    resources = infra["database"]["Resources"]
    instance = resources["Instance"]["Properties"]
    assert instance["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in instance
    secret = {"Fn::GetAtt": ["Instance", "MasterUserSecret.SecretArn"]}
    (auth,) = resources["Proxy"]["Properties"]["Auth"]
    assert (auth["SecretArn"], auth["IAMAuth"]) == (secret, "REQUIRED")
    (policy,) = resources["ProxyRole"]["Properties"]["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == ("secretsmanager:GetSecretValue", secret)
    for document in infra.values():
        for parameter in document["Parameters"].values():
            assert "NoEcho" not in parameter  # nothing secret is a parameter
    assert resources["Instance"]["DeletionPolicy"] == "Snapshot"  # kept on purpose


@pytest.mark.parametrize(("setting", "gateways"), [("single", 1), ("per-az", 2)])
def test_nat_gateways_single_or_one_per_zone(
    infra: dict[str, dict[str, Any]], setting: str, gateways: int
) -> None:
    resources = render(infra["network"], {"StackLabel": "s", "NatGateways": setting})["Resources"]
    nats = [n for n, r in resources.items() if r["Type"] == "AWS::EC2::NatGateway"]
    assert len(nats) == gateways
    zone_b = resources["PrivateDefaultRouteB"]["Properties"]["NatGatewayId"]
    assert zone_b == {"Ref": "NatGatewayB" if gateways == 2 else "NatGatewayA"}
    endpoint = resources["S3GatewayEndpoint"]["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"  # the failure destination's, free
    private = {"Ref": "PrivateRouteTableA"}, {"Ref": "PrivateRouteTableB"}
    assert tuple(endpoint["RouteTableIds"]) == private
    assert not [
        r
        for r in resources.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint"
        and r["Properties"]["VpcEndpointType"] == "Interface"
    ]


@pytest.mark.parametrize("cluster_type", ["serverless", "provisioned"])
def test_kafka_cluster_accepts_iam_only(
    infra: dict[str, dict[str, Any]], cluster_type: str
) -> None:
    params = {
        "StackLabel": "s",
        "VpcId": "vpc-1",
        "SubnetIds": "a,b",
        "ClientSecurityGroupId": "sg-1",
        "ClusterType": cluster_type,
    }
    resources = render(infra["kafka"], params)["Resources"]
    (cluster,) = [r for r in resources.values() if r["Type"].startswith("AWS::MSK::")]
    auth = cluster["Properties"]["ClientAuthentication"]
    assert auth["Sasl"] == {"Iam": {"Enabled": True}}
    if cluster_type == "provisioned":
        assert auth["Unauthenticated"] == {"Enabled": False}
        assert (
            cluster["Properties"]["EncryptionInfo"]["EncryptionInTransit"]["ClientBroker"] == "TLS"
        )


# -- parameters named in docs/deploy.md and samconfig.toml --------------------------------------


def documented_parameters() -> tuple[set[str], set[str]]:
    """Names used as ``Name=value`` anywhere in deploy.md; names in its parameter tables."""
    text = (ROOT / "docs/deploy.md").read_text()
    assigned = set(re.findall(r"\b([A-Z][a-z][A-Za-z0-9]*)=", text))  # CamelCase=value
    section = text.split("## Parameters", 1)[1].split("\n## ", 1)[0]
    tabled = set(re.findall(r"^\| `([A-Za-z0-9]+)`", section, flags=re.MULTILINE))
    tabled |= set(re.findall(r"^\| `[A-Za-z0-9]+`, `([A-Za-z0-9]+)`", section, flags=re.MULTILINE))
    for row in re.findall(r"^\| ([^|]+)\|", section, flags=re.MULTILINE):
        tabled |= set(re.findall(r"`([A-Z][A-Za-z0-9]+)`", row))
    return assigned, tabled


def test_every_parameter_in_the_guide_and_samconfig_exists_and_every_one_is_documented(
    template: dict[str, Any],
) -> None:
    parameters = set(template["Parameters"])
    assigned, tabled = documented_parameters()
    assert assigned - parameters == set()
    assert tabled - parameters == set()
    assert parameters - tabled == set(), "template parameters missing from docs/deploy.md"
    for environment in ENVIRONMENTS:
        assert set(samconfig_overrides(environment)) - parameters == set(), environment


def test_the_guides_use_the_environments_sites_path_and_database_name(
    template: dict[str, Any],
) -> None:
    paths = {samconfig_overrides(e)["SitesPath"] for e in ENVIRONMENTS}
    names = {
        samconfig_overrides(e).get(
            "DatabaseName", template["Parameters"]["DatabaseName"]["Default"]
        )
        for e in ENVIRONMENTS
    }
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Deploy to AWS", 1)[1].split("\n## ", 1)[0]
    guide = (ROOT / "docs/deploy.md").read_text()
    for text in (quick, guide):
        used = set(re.findall(r"SITES_PATH=(\S+)", text))
        assert used, "the guide must say where the sites go"
        assert used <= paths, used
        assert set(re.findall(r"DB_NAME=(\w+)", text)) <= names
    # the quick deploy sets SITES_PATH before it adds a site
    assert quick.index("SITES_PATH=/webchecker/dev/sites") < quick.index("sites add")
    assert samconfig_overrides("default")["SitesPath"] == "/webchecker/dev/sites"


@pytest.mark.parametrize("name", INFRA)
def test_nested_stacks_get_exactly_the_parameters_they_declare(
    template: dict[str, Any], infra: dict[str, dict[str, Any]], name: str
) -> None:
    application = template["Resources"][name.capitalize()]
    given = application["Properties"]["Parameters"]
    declared = infra[name]["Parameters"]
    assert set(given) <= set(declared)
    assert {p for p, spec in declared.items() if "Default" not in spec} <= set(given)
    # a value the root template accepts is accepted by the nested stack too
    for child, value in given.items():
        root = value.get("Ref") if isinstance(value, dict) else None
        if root in template["Parameters"]:
            assert (
                template["Parameters"][root].get("AllowedPattern")
                == declared[child].get("AllowedPattern")
                or "AllowedPattern" not in declared[child]
            ), (child, root)
            assert (
                template["Parameters"][root].get("AllowedValues")
                == declared[child].get("AllowedValues")
                or "AllowedValues" not in declared[child]
            ), (child, root)
