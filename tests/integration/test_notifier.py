"""The notifier on real PostgreSQL and moto's SNS, with SQS queues subscribed as receivers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from tests.fixtures.aws import AWS_REGION
from tests.fixtures.lambda_context import FakeLambdaContext, load_event
from tests.fixtures.lambda_context import load_app as load_lambda_app
from tests.messages import BASE_TIME, failed_message, message, records
from webchecker.alert.formatting import MAX_SUBJECT
from webchecker.alert.notifier import Notifier, NotifierSettings
from webchecker.local.embedded.network import free_port
from webchecker.store.batch import CheckStore
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.incidents import IncidentSettings
from webchecker.store.migrations import migrate

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.postgres


class Receiver:
    """An SQS queue subscribed to the topic (optionally with a filter policy)."""

    def __init__(self, sns: SNSClient, topic_arn: str, name: str, policy: Any = None) -> None:
        self.sqs: SQSClient = boto3.client("sqs", region_name=AWS_REGION)
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        attributes = {} if policy is None else {"FilterPolicy": json.dumps(policy)}
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes=attributes,
        )

    def drain(self) -> list[dict[str, Any]]:
        """Every notification waiting, in arrival order (SNS envelopes)."""
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return out
            for received in messages:
                out.append(json.loads(received["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=received["ReceiptHandle"])


@pytest.fixture
def topic(aws: None) -> str:
    sns = boto3.client("sns", region_name=AWS_REGION)
    return sns.create_topic(Name="webchecker-alerts")["TopicArn"]


@pytest.fixture
def sns(topic: str) -> SNSClient:
    client: SNSClient = boto3.client("sns", region_name=AWS_REGION)
    return client


@pytest.fixture
def receiver(sns: SNSClient, topic: str) -> Receiver:
    return Receiver(sns, topic, "everything")


@pytest.fixture
def store(database_url: str) -> Iterator[CheckStore]:
    database = Database(DatabaseSettings.from_url(database_url))
    migrate(database)
    store = CheckStore(database, incidents=IncidentSettings(cert_warning_days=0, flap_opens=0))
    yield store
    database.close()


def notifier_for(database_url: str, topic: str, sns: Any, **settings: Any) -> Notifier:
    values: dict[str, Any] = {
        "database": DatabaseSettings.from_url(database_url),
        "topic_arn": topic,
        "migrate": False,
        **settings,
    }
    return Notifier(NotifierSettings(**values), sns=sns)


def outage(sns: Any, down: list[bool]) -> None:
    """While ``down[0]``, every publish fails at the send (as with SNS unreachable)."""

    def refuse(**_: Any) -> None:
        if down[0]:
            raise EndpointConnectionError(endpoint_url="https://sns.eu-west-1.amazonaws.com/")

    sns.meta.events.register("before-send.sns.Publish", refuse)


def go_down(store: CheckStore, site_id: str, *, minute: int = 0, **fields: Any) -> None:
    """Two failed checks: the site is down, one incident.opened in the outbox."""
    values = [
        failed_message(
            site_id=site_id,
            checked_at=BASE_TIME + timedelta(minutes=minute + i, seconds=3),
            **fields,
        )
        for i in range(2)
    ]
    store.write(records(values, first_offset=hash((site_id, minute)) % 10**9))


def come_back(store: CheckStore, site_id: str, *, minute: int) -> None:
    values = [
        message(site_id=site_id, checked_at=BASE_TIME + timedelta(minutes=minute + i, seconds=3))
        for i in range(2)
    ]
    store.write(records(values, first_offset=hash((site_id, minute, 1)) % 10**9))


def outbox(store: CheckStore) -> list[list[Any]]:
    return store.database.connection().run(
        "SELECT alert_id::text, type, site_id, sent_at IS NOT NULL, attempts"
        " FROM webchecker.alerts ORDER BY seq"
    )


def test_pending_alerts_reach_a_subscriber_with_subject_and_attributes(
    database_url: str, store: CheckStore, topic: str, sns: SNSClient, receiver: Receiver
) -> None:
    go_down(store, "shop", tags=["prod", "eu"])
    come_back(store, "shop", minute=10)
    notifier = notifier_for(database_url, topic, sns)
    try:
        outcome = notifier.run()
        again = notifier.run()
    finally:
        notifier.close()
    assert outcome.as_dict() == {"sent": 2, "pending": 0}
    assert again.as_dict() == {"sent": 0, "pending": 0}
    got = receiver.drain()
    stored = outbox(store)
    assert [json.loads(n["Message"])["alert_id"] for n in got] == [row[0] for row in stored]
    opened, resolved = (json.loads(n["Message"]) for n in got)
    assert opened["type"] == "incident.opened"
    assert resolved["type"] == "incident.resolved"
    assert resolved["duration_seconds"] == 600.0
    assert got[0]["Subject"] == "DOWN shop: status 503"
    assert got[1]["Subject"] == "UP shop: back after 10m"
    attributes = got[0]["MessageAttributes"]
    assert attributes["type"] == {"Type": "String", "Value": "incident.opened"}
    assert attributes["site_id"] == {"Type": "String", "Value": "shop"}
    assert attributes["tags"]["Type"] == "String.Array"
    assert json.loads(attributes["tags"]["Value"]) == ["prod", "eu"]
    assert all(row[3] and row[4] == 1 for row in stored)


def test_a_filter_policy_on_tags_gets_only_its_sites(
    database_url: str, store: CheckStore, topic: str, sns: SNSClient, receiver: Receiver
) -> None:
    team = Receiver(sns, topic, "team-db", policy={"tags": ["db"]})
    go_down(store, "web", tags=["web"])
    go_down(store, "postgres", tags=["db", "prod"])
    notifier = notifier_for(database_url, topic, sns)
    try:
        assert notifier.run().sent == 2
    finally:
        notifier.close()
    assert [json.loads(n["Message"])["site_id"] for n in team.drain()] == ["postgres"]
    assert len(receiver.drain()) == 2


def test_sns_down_then_back_sends_each_alert_once_in_order(
    database_url: str, store: CheckStore, topic: str, sns: SNSClient, receiver: Receiver
) -> None:
    for index in range(6):
        go_down(store, f"site-{index}", minute=index)
    come_back(store, "site-0", minute=20)
    down = [True]
    outage(sns, down)
    notifier = notifier_for(database_url, topic, sns, max_failures=3)
    try:
        first = notifier.run()
        assert first.as_dict() == {"sent": 0, "pending": 7}
        assert first.failed == 3  # then it stopped trying: SNS is down
        assert receiver.drain() == []
        down[0] = False
        second = notifier.run()
    finally:
        notifier.close()
    assert second.as_dict() == {"sent": 7, "pending": 0}
    stored = outbox(store)
    got = [json.loads(n["Message"])["alert_id"] for n in receiver.drain()]
    assert got == [row[0] for row in stored]  # once each, oldest first
    assert [row[4] for row in stored] == [2, 2, 2, 1, 1, 1, 1]


def test_a_failed_publish_holds_back_its_site_and_not_the_others(
    database_url: str, store: CheckStore, topic: str, sns: SNSClient, receiver: Receiver
) -> None:
    go_down(store, "flaky")
    go_down(store, "steady")
    come_back(store, "flaky", minute=10)
    calls: list[str] = []

    def fail_the_first(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["MessageAttributes"]["site_id"]["StringValue"])
        if len(calls) == 1:
            raise EndpointConnectionError(endpoint_url="https://sns.eu-west-1.amazonaws.com/")

    sns.meta.events.register("before-parameter-build.sns.Publish", fail_the_first)
    notifier = notifier_for(database_url, topic, sns)
    try:
        first = notifier.run()
        first_got = [json.loads(n["Message"])["site_id"] for n in receiver.drain()]
        second = notifier.run()
    finally:
        notifier.close()
    # flaky's opening failed: its resolution waited (never before the opening)
    assert calls[:2] == ["flaky", "steady"]
    assert first_got == ["steady"]
    assert (first.sent, first.pending) == (1, 2)
    got = [json.loads(n["Message"]) for n in receiver.drain()]
    assert [(a["site_id"], a["type"]) for a in got] == [
        ("flaky", "incident.opened"),
        ("flaky", "incident.resolved"),
    ]
    assert second.as_dict() == {"sent": 2, "pending": 0}


def test_an_unreachable_sns_leaves_everything_pending(
    database_url: str, store: CheckStore, topic: str
) -> None:
    go_down(store, "a")
    unreachable = boto3.client(
        "sns",
        region_name=AWS_REGION,
        endpoint_url=f"http://127.0.0.1:{free_port('127.0.0.1')}",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    notifier = notifier_for(database_url, topic, unreachable)
    try:
        assert notifier.run().as_dict() == {"sent": 0, "pending": 1}
    finally:
        notifier.close()
    (last_error,) = store.database.connection().run("SELECT last_error FROM webchecker.alerts")[0]
    assert "EndpointConnectionError" in last_error


def test_reminders_every_n_minutes_while_open_and_none_after(
    database_url: str, store: CheckStore, topic: str, sns: SNSClient, receiver: Receiver
) -> None:
    go_down(store, "slow")
    notifier = notifier_for(database_url, topic, sns, reminder_minutes=30)
    now = datetime.now(UTC)
    try:
        notifier.run(now)
        notifier.run(now + timedelta(minutes=29))
        notifier.run(now + timedelta(minutes=31))
        notifier.run(now + timedelta(minutes=32))  # the last reminder is 1 minute old
        notifier.run(now + timedelta(minutes=62))
        got = [json.loads(n["Message"]) for n in receiver.drain()]
        come_back(store, "slow", minute=100)
        notifier.run(now + timedelta(minutes=200))
        after = [json.loads(n["Message"])["type"] for n in receiver.drain()]
    finally:
        notifier.close()
    assert [alert["type"] for alert in got] == [
        "incident.opened",
        "incident.reminder",
        "incident.reminder",
    ]
    assert got[1]["incident_id"] == got[0]["incident_id"]
    assert got[1]["alert_id"] != got[2]["alert_id"]
    assert after == ["incident.resolved"]


def test_no_reminder_during_maintenance(
    database_url: str, store: CheckStore, topic: str, sns: SNSClient, receiver: Receiver
) -> None:
    go_down(store, "kept")
    now = datetime.now(UTC)
    store.database.connection().run(
        "INSERT INTO webchecker.maintenance_windows (window_id, site_ids, starts_at, ends_at)"
        " VALUES (gen_random_uuid(), ARRAY['kept'], :starts, :ends)",
        starts=now,
        ends=now + timedelta(hours=1),
    )
    notifier = notifier_for(database_url, topic, sns, reminder_minutes=5)
    try:
        notifier.run(now)
        assert notifier.run(now + timedelta(minutes=30)).reminders == 0
        assert notifier.run(now + timedelta(minutes=70)).reminders == 1
    finally:
        notifier.close()


def test_many_sites_down_in_one_tick_send_one_summary(
    database_url: str, store: CheckStore, topic: str, sns: SNSClient, receiver: Receiver
) -> None:
    values = [
        failed_message(
            site_id=f"s{index:02d}",
            checked_at=BASE_TIME + timedelta(minutes=minute, seconds=3),
            error="connect",
            status_code=None,
            error_detail="connection refused",
        )
        for minute in range(2)
        for index in range(12)
    ]
    store.write(records(values))
    go_down(store, "alone", minute=30)
    notifier = notifier_for(database_url, topic, sns, summary_threshold=10)
    try:
        outcome = notifier.run()
    finally:
        notifier.close()
    assert outcome.summarized == 12
    got = receiver.drain()
    assert [json.loads(n["Message"])["type"] for n in got] == [
        "incident.opened",
        "incidents.summary",
    ]
    summary = json.loads(got[1]["Message"])
    assert summary["count"] == 12
    assert summary["of"] == "incident.opened"
    assert summary["site_ids"] == [f"s{index:02d}" for index in range(12)]
    assert got[1]["Subject"].startswith("DOWN 12 sites at once: s00, s01")
    assert len(got[1]["Subject"]) <= MAX_SUBJECT
    assert "site_id" not in got[1]["MessageAttributes"]
    folded = store.database.connection().run(
        "SELECT count(*) FROM webchecker.alerts"
        " WHERE summary_id = CAST(:id AS uuid) AND sent_at IS NOT NULL",
        id=summary["alert_id"],
    )
    assert folded == [[12]]


def test_hostile_text_in_an_alert_still_gives_a_valid_subject(
    database_url: str, store: CheckStore, topic: str, sns: SNSClient, receiver: Receiver
) -> None:
    go_down(
        store,
        "odd",
        error="other",
        status_code=None,
        error_detail="\u00e9\u202e" + "x" * 450 + "\n\t",
    )
    notifier = notifier_for(database_url, topic, sns)
    try:
        assert notifier.run().sent == 1
    finally:
        notifier.close()
    (got,) = receiver.drain()
    assert len(got["Subject"]) == MAX_SUBJECT
    assert got["Subject"].isascii()
    assert got["Subject"].isprintable()
    assert json.loads(got["Message"])["error_detail"].startswith("\u00e9\u202e")


def load_app(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    return load_lambda_app(monkeypatch, "notifier", **env)


def test_the_handler_publishes_on_the_scheduled_event(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    store: CheckStore,
    topic: str,
    receiver: Receiver,
) -> None:
    go_down(store, "handled")
    app = load_app(monkeypatch, DATABASE_URL=database_url, ALERT_TOPIC_ARN=topic)
    try:
        result = app.lambda_handler(load_event("notifier-scheduled"), FakeLambdaContext())
    finally:
        app.NOTIFIER.close()
    assert result == {"sent": 1, "pending": 0}
    assert len(receiver.drain()) == 1


def test_the_handler_refuses_to_start_without_a_topic(
    monkeypatch: pytest.MonkeyPatch, database_url: str, aws: None
) -> None:
    from webchecker.exceptions import ConfigurationError

    monkeypatch.delenv("ALERT_TOPIC_ARN", raising=False)
    with pytest.raises(ConfigurationError, match="ALERT_TOPIC_ARN"):
        load_app(monkeypatch, DATABASE_URL=database_url)
