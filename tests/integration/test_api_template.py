"""template.yaml's REST API block: the HTTP API, its IAM authorizer, route, throttling, CORS,
and the function's environment and permissions (cfn-lint and checkov run in `make lint`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.test_template import (
    CREDENTIALS_IN_URL,
    ROOT,
    SECRET_NAME,
    function_env,
    makefile_targets,
    package_env_names,
    props,
    template,
)

__all__ = ["template"]  # the module-scoped fixture, shared
PARAMETER = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter$"


def test_http_api_has_iam_authorization_throttling_and_cors_only_when_asked(
    template: dict[str, Any],
) -> None:
    api = props(template, "HttpApi")
    assert template["Resources"]["HttpApi"]["Type"] == "AWS::Serverless::HttpApi"
    assert api["Auth"] == {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}
    assert api["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    condition, when, otherwise = api["CorsConfiguration"]["Fn::If"]
    assert condition == "ApiCorsWanted"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert template["Conditions"]["ApiCorsWanted"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ApiCorsOrigins"}, ""]}]
    }
    assert template["Parameters"]["ApiCorsOrigins"]["Default"] == ""
    assert "if-match" in when["AllowHeaders"]
    assert "etag" in when["ExposeHeaders"]
    assert api["AccessLogSettings"]["DestinationArn"] == {
        "Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]
    }


def test_one_default_route_sends_every_request_to_the_function(template: dict[str, Any]) -> None:
    (event,) = props(template, "ApiFunction")["Events"].values()
    # no Path and Method: SAM's $default route, so the function answers unknown paths itself
    assert event == {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "HttpApi"}}}


def test_function_is_built_from_its_handler_in_the_vpc_after_setup(
    template: dict[str, Any],
) -> None:
    resource = template["Resources"]["ApiFunction"]
    function = resource["Properties"]
    assert function["CodeUri"] == "functions/api/"
    assert (ROOT / "functions/api/app.py").is_file()
    assert "build-ApiFunction" in makefile_targets(ROOT / "functions/api/Makefile")
    assert resource["Metadata"]["BuildMethod"] == "makefile"
    assert resource["DependsOn"] == "Setup"
    assert function["VpcConfig"] == props(template, "WriterFunction")["VpcConfig"]
    assert function["Timeout"] < 30  # API Gateway's integration timeout


def test_environment_is_what_the_package_reads_and_holds_no_secret(
    template: dict[str, Any],
) -> None:
    env = function_env(template, "ApiFunction")
    known = package_env_names()
    for name, value in env.items():
        assert name.startswith("POWERTOOLS_") or name in known, name
        if SECRET_NAME.search(name):
            assert name.endswith("_ARN"), name
        assert not CREDENTIALS_IN_URL.search(json.dumps(value)), name
    assert env["DATABASE_URL"] == ""
    assert env["ALERT_TOPIC_ARN"] == {"Ref": "AlertTopic"}
    writer = function_env(template, "WriterFunction")
    for name in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_SCHEMA", "DB_IAM_AUTH"):
        assert env[name] == writer[name], name


@pytest.mark.parametrize(
    ("sid", "resources"),
    [
        (
            "Sites",
            [{"Fn::Sub": f"{PARAMETER}{{SitesPath}}"}, {"Fn::Sub": f"{PARAMETER}{{SitesPath}}/*"}],
        ),
        ("Subscriptions", {"Ref": "AlertTopic"}),
    ],
)  # fmt: skip
def test_permissions_name_exact_resources(
    template: dict[str, Any], sid: str, resources: object
) -> None:
    policies = props(template, "ApiFunction")["Policies"]
    assert {"Ref": "DatabaseClientPolicy"} in policies
    statements = [s for p in policies if isinstance(p, dict) for s in p.get("Statement", [])]
    (statement,) = [s for s in statements if s["Sid"] == sid]
    assert statement["Resource"] == resources
    assert "*" not in json.dumps(statement["Action"])


def test_outputs_give_the_api_url(template: dict[str, Any]) -> None:
    url, names = template["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${Id}.execute-api.")
    assert names == {"Id": {"Ref": "HttpApi"}}


def test_server_errors_alarm_on_the_handlers_own_count(template: dict[str, Any]) -> None:
    alarm = props(template, "ApiServerErrorsAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Webchecker", "Responses5xx")
    assert alarm["Dimensions"] == [
        {"Name": "service", "Value": {"Fn::Sub": "${AWS::StackName}-api"}}
    ]
    assert function_env(template, "ApiFunction")["POWERTOOLS_SERVICE_NAME"] == {
        "Fn::Sub": "${AWS::StackName}-api"
    }
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
