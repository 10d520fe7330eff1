"""Publishing check results to the real broker (embedded Tansu, or KAFKA_BOOTSTRAP_SERVERS)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka.admin import AdminClient

from webchecker.check.transport import KafkaPublisher, KafkaSettings, read_messages
from webchecker.exceptions import PublishError
from webchecker.local.embedded.broker import EmbeddedBroker
from webchecker.local.embedded.network import free_port
from webchecker.results import CheckResult

pytestmark = pytest.mark.kafka


def settings_for(bootstrap: str, **overrides: object) -> KafkaSettings:
    fields: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "topic": f"test.checks.{uuid.uuid4().hex[:12]}",
        "topic_partitions": 3,
        "delivery_timeout_ms": 10_000,
        **overrides,
    }
    return KafkaSettings(**fields)  # type: ignore[arg-type]


def result(site_id: str, *, ok: bool = True) -> CheckResult:
    now = datetime.now(UTC)
    return CheckResult(
        check_id=str(uuid.uuid4()),
        site_id=site_id,
        url=f"https://{site_id}.example/",
        region="eu-west-1",
        scheduled_at=now.replace(second=0, microsecond=0),
        checked_at=now,
        response_time_ms=12.5 if ok else None,
        status_code=200 if ok else None,
        ok=ok,
        error=None if ok else "timeout",
        error_detail=None if ok else "no complete response within 10 s",
        regex_matched=None,
        connect_ms=1.25,
    )


def test_publish_creates_the_topic_and_delivers_one_message_per_result(
    kafka_bootstrap: str,
) -> None:
    settings = settings_for(kafka_bootstrap)
    publisher = KafkaPublisher(settings)
    results = [result(f"site-{n}", ok=n % 3 != 0) for n in range(12)]
    try:
        assert publisher.publish(results) == 12
    finally:
        publisher.close()
    topics = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert len(topics[settings.topic].partitions) == 3  # created with the configured count
    messages = read_messages(settings, count=12)
    assert len(messages) == 12
    by_key = {m.key: m for m in messages}
    assert set(by_key) == {r.site_id.encode() for r in results}
    for original in results:
        message = by_key[original.site_id.encode()]
        assert message.value is not None
        decoded = CheckResult.from_json(message.value)
        assert decoded.to_message() == original.to_message()
    # The key decides the partition: one site's results stay in order on one partition.
    assert len({m.partition for m in messages}) > 1


def test_the_producer_is_created_once_and_reused(kafka_bootstrap: str) -> None:
    settings = settings_for(kafka_bootstrap)
    publisher = KafkaPublisher(settings)
    try:
        assert publisher.publish([result("a")]) == 1
        producer = publisher._producer
        assert producer is not None
        assert publisher.publish([result("b"), result("c")]) == 2
        assert publisher._producer is producer
    finally:
        publisher.close()
    assert len(read_messages(settings, count=3)) == 3


def test_an_existing_topic_is_used_as_it_is(kafka_bootstrap: str) -> None:
    first = settings_for(kafka_bootstrap, topic_partitions=2)
    KafkaPublisher(first).ensure_topic()
    # A second container with other settings finds the topic and leaves it alone.
    second = KafkaPublisher(settings_for(kafka_bootstrap, topic=first.topic, topic_partitions=5))
    second.ensure_topic()
    topics = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert len(topics[first.topic].partitions) == 2


def test_publishing_nothing_touches_no_broker() -> None:
    settings = settings_for(f"127.0.0.1:{free_port()}")
    assert KafkaPublisher(settings).publish([]) == 0


@pytest.mark.parametrize("create_topic", [True, False])
def test_an_unreachable_broker_raises_within_the_delivery_timeout(create_topic: bool) -> None:
    # Nothing listens on this loopback port.
    settings = settings_for(
        f"127.0.0.1:{free_port()}", delivery_timeout_ms=2000, create_topic=create_topic
    )
    publisher = KafkaPublisher(settings)
    started = time.monotonic()
    with pytest.raises(PublishError, match=r"127\.0\.0\.1"):
        publisher.publish([result("a"), result("b")])
    assert time.monotonic() - started < 2.0 + 5.0


def test_a_publisher_recovers_once_the_broker_is_back() -> None:
    # One container across a broker outage: the first invocation fails, a later one succeeds.
    port = free_port()
    settings = settings_for(f"127.0.0.1:{port}", delivery_timeout_ms=2000, create_topic=False)
    publisher = KafkaPublisher(settings)
    with pytest.raises(PublishError, match="not delivered"):
        publisher.publish([result("lost")])
    with EmbeddedBroker(port=port):
        KafkaPublisher(dataclasses.replace(settings, create_topic=True)).ensure_topic()
        try:
            assert publisher.publish([result("a"), result("b")]) == 2
        finally:
            publisher.close()
        # Ask for one more than expected: the failed invocation's result must not show up late.
        keys = [m.key for m in read_messages(settings, count=3, timeout=3)]
    assert sorted(keys) == [b"a", b"b"]


def test_a_result_sent_without_prepare_is_reported_by_flush_and_touches_no_broker() -> None:
    # Nothing listens here: send() must not try to create the topic on the event loop.
    publisher = KafkaPublisher(settings_for(f"127.0.0.1:{free_port()}"))
    publisher.send(result("a"))
    with pytest.raises(PublishError, match=r"1 of 1 .*not prepared"):
        publisher.flush()
