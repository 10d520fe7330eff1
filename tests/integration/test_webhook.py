"""The webhook formatter: SNS records posted to a real HTTP server on loopback; the URL read
from Secrets Manager or a SecureString parameter in moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.fixtures.aws import AWS_REGION
from tests.fixtures.lambda_context import load_event
from webchecker.alert.webhook import WebhookPoster, WebhookSettings
from webchecker.exceptions import ConfigurationError, PublishError


def posts_since(http_targets: Any, before: int) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in http_targets.requests_to("/ok")[before:]]


def test_each_record_becomes_one_post(http_targets: Any) -> None:
    before = len(http_targets.requests_to("/ok"))
    poster = WebhookPoster(WebhookSettings(flavour="discord", url=http_targets.url("/ok")))
    event = load_event("webhook-sns")
    event["Records"].append({"Sns": {"Message": "a plain text note"}})
    event["Records"].append({"Sns": {}})  # no message: skipped

    assert poster.handle(event) == {"posted": 2}

    first, second = posts_since(http_targets, before)
    assert first["content"] == "DOWN example-com: status 503"
    assert second["content"] == "NOTE ?"


def test_a_refused_post_raises_so_that_lambda_retries(http_targets: Any) -> None:
    poster = WebhookPoster(WebhookSettings(flavour="slack", url=http_targets.url("/status/500")))
    with pytest.raises(PublishError, match="500"):
        poster.handle(load_event("webhook-sns"))


def test_the_url_comes_from_secrets_manager(aws: None, http_targets: Any) -> None:
    secrets = boto3.client("secretsmanager", region_name=AWS_REGION)
    arn = secrets.create_secret(Name="webhook", SecretString=http_targets.url("/ok"))["ARN"]
    poster = WebhookPoster(WebhookSettings(flavour="teams", secret_arn=arn))
    before = len(http_targets.requests_to("/ok"))
    assert poster.handle(load_event("webhook-sns")) == {"posted": 1}
    (posted,) = posts_since(http_targets, before)
    assert posted["@type"] == "MessageCard"


def test_the_url_comes_from_a_securestring(aws: None, http_targets: Any) -> None:
    ssm = boto3.client("ssm", region_name=AWS_REGION)
    ssm.put_parameter(
        Name="/webchecker/webhook", Value=http_targets.url("/ok"), Type="SecureString"
    )
    poster = WebhookPoster(WebhookSettings(flavour="slack", parameter="/webchecker/webhook"))
    assert poster.handle(load_event("webhook-sns")) == {"posted": 1}


def test_a_secret_that_is_not_a_url_is_refused_without_showing_it(aws: None) -> None:
    ssm = boto3.client("ssm", region_name=AWS_REGION)
    ssm.put_parameter(Name="/webchecker/webhook", Value="hunter2", Type="SecureString")
    poster = WebhookPoster(WebhookSettings(flavour="slack", parameter="/webchecker/webhook"))
    with pytest.raises(ConfigurationError) as raised:
        poster.handle(load_event("webhook-sns"))
    assert "hunter2" not in str(raised.value)
