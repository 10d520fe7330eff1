"""Maintenance windows (PostgreSQL) and alert subscriptions (SNS) through the handler."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from tests.integration.api.conftest import ApiClient, rows
from webchecker.store.database import Database

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)


def test_windows_add_list_delete(api: ApiClient, migrated: Database) -> None:
    created = api(
        "add-maintenance",
        body={"tags": ["prod"], "starts_at": (NOW + timedelta(hours=1)).isoformat(),
              "ends_at": (NOW + timedelta(hours=2)).isoformat(), "reason": "upgrade"},
    )  # fmt: skip
    assert created.status == 201, created.text
    window = created.json
    assert created.headers["Location"] == f"/v1/maintenance/{window['id']}"
    assert window["tags"] == ["prod"]
    assert window["site_ids"] is None
    assert window["starts_at"] == (NOW + timedelta(hours=1)).isoformat().replace("+00:00", ".000Z")
    past = api(
        "add-maintenance",
        body={"starts_at": "2025-01-01T00:00:00Z", "ends_at": "2025-01-01T02:00:00+01:00"},
    )
    assert past.status == 201
    listed = api("list-maintenance").json["windows"]
    assert [w["id"] for w in listed] == [window["id"]]
    everything = api("list-maintenance", query={"include_ended": "true"}).json["windows"]
    assert [w["id"] for w in everything] == [past.json["id"], window["id"]]
    path = f"/v1/maintenance/{window['id']}"
    assert api("delete-maintenance", path=path).status == 204
    assert api("delete-maintenance", path=path).status == 404
    assert api("delete-maintenance", path="/v1/maintenance/not-a-uuid").status == 404
    assert rows(migrated, "SELECT count(*) FROM webchecker.maintenance_windows") == [(1,)]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": "2026-12-02T22:00:00+00:30"}, "ends_at"),
        ({"starts_at": "2026-12-02T22:00:00"}, "starts_at"),
        ({"starts_at": 1796230800}, "starts_at"),
        ({"site_ids": ["Not Valid"]}, "site_ids.0"),
        ({"site_ids": []}, "site_ids"),
        ({"reason": "x" * 501}, "reason"),
        ({"reason": "nul\x00byte"}, "reason"),
        ({"reason": "\ud800"}, "reason"),
        ({"reason": 5}, "reason"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_windows_are_422_naming_the_field(
    api: ApiClient, migrated: Database, changes: dict[str, object], field: str
) -> None:
    body = json.loads(api_event_body("add-maintenance"))
    body.update(changes)
    reply = api("add-maintenance", body=body)
    assert reply.status == 422, reply.text
    assert [e["field"] for e in reply.json["errors"]] == [field]
    assert rows(migrated, "SELECT count(*) FROM webchecker.maintenance_windows") == [(0,)]


def api_event_body(name: str) -> str:
    from tests.integration.api.conftest import api_event

    body: str = api_event(name)["body"]
    return body


def test_subscriptions_subscribe_with_a_filter_policy_list_and_unsubscribe(
    api: ApiClient, sns_client: SNSClient, alert_topic: str
) -> None:
    created = api("add-subscription")
    assert created.status == 201, created.text
    subscription = created.json
    assert subscription["protocol"] == "email"
    assert subscription["endpoint"] == "ops@example.com"
    assert subscription["filter"] == {
        "site_ids": None, "tags": ["prod"], "types": ["incident.opened", "incident.resolved"],
    }  # fmt: skip
    assert subscription["status"] in ("confirmed", "pending_confirmation")
    arn = f"{alert_topic}:{subscription['id']}"
    attributes = sns_client.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert json.loads(attributes["FilterPolicy"]) == {
        "tags": ["prod"], "type": ["incident.opened", "incident.resolved"],
    }  # fmt: skip
    hook = api(
        "add-subscription", body={"protocol": "https", "endpoint": "https://hooks.example/x"}
    )
    assert hook.status == 201
    assert hook.json["filter"] == {
        "site_ids": None,
        "tags": None,
        "types": None,
    }
    listed = api("list-subscriptions").json["subscriptions"]
    assert sorted(s["endpoint"] for s in listed) == ["https://hooks.example/x", "ops@example.com"]
    path = f"/v1/subscriptions/{subscription['id']}"
    assert api("delete-subscription", path=path).status == 204
    assert api("delete-subscription", path=path).status == 404
    assert api("delete-subscription", path="/v1/subscriptions/nonsense").status == 404
    left = sns_client.list_subscriptions_by_topic(TopicArn=alert_topic)["Subscriptions"]
    assert [s["Endpoint"] for s in left] == ["https://hooks.example/x"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"protocol": "email", "endpoint": "not-an-address"}, "endpoint"),
        ({"protocol": "https", "endpoint": "http://plain.example/"}, "endpoint"),
        ({"protocol": "sqs", "endpoint": "https://sqs.example/"}, "endpoint"),
        ({"protocol": "sms", "endpoint": "+15555550100"}, "protocol"),
        (
            {"protocol": "email", "endpoint": "a@b.example", "filter": {"types": ["x"]}},
            "filter.types.0",
        ),
        (
            {"protocol": "email", "endpoint": "a@b.example",
             "filter": {"site_ids": [f"s{i}" for i in range(40)], "types": ["incident.opened",
                        "incident.resolved", "incident.reminder", "certificate.expiring"]}},
            "filter",
        ),
    ],
)  # fmt: skip
def test_invalid_subscriptions_are_422_and_subscribe_nothing(
    api: ApiClient, sns_client: SNSClient, alert_topic: str, body: dict[str, object], field: str
) -> None:
    reply = api("add-subscription", body=body)
    assert reply.status == 422, reply.text
    assert reply.json["errors"][0]["field"] == field
    assert sns_client.list_subscriptions_by_topic(TopicArn=alert_topic)["Subscriptions"] == []


def test_subscriptions_without_an_alert_topic_are_503(
    api_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fixtures.lambda_context import cold_start
    from tests.integration.api.conftest import ApiClient as Client

    monkeypatch.delenv("ALERT_TOPIC_ARN")
    client = Client(cold_start("api"))
    reply = client("list-subscriptions")
    assert reply.status == 503
    assert reply.content_type == "application/problem+json"
    assert "Traceback" not in reply.text
