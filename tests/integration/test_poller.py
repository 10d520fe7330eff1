"""The local event source mapping on a real broker: MSK-shaped batches, commit after success,
retry without moving on, and exactly-once storage across a database outage."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.messages import encode, message
from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.local.poller import Poller, PollerSettings
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import RetentionSettings, migrate
from webchecker.store.msk import MskEvent
from webchecker.store.writer import Writer, WriterSettings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    name = f"checks-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(name, num_partitions=2)]).values():
        future.result(timeout=10)
    return name


def produce(bootstrap: str, topic: str, values: list[dict[str, Any] | bytes | None]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for index, value in enumerate(values):
        producer.produce(
            topic,
            key=f"site-{index % 3}".encode(),
            value=encode(value),
            headers=[("source", b"test")],
            partition=index % 2,
        )
    assert producer.flush(10) == 0


def settings_for(bootstrap: str, topic: str, **overrides: Any) -> PollerSettings:
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "topic": topic,
        "group_id": f"group-{uuid.uuid4().hex[:8]}",
        "batch_size": 50,
        "batch_window": 0.2,
        "retry_initial": 0.05,
        "retry_max": 0.5,
    }
    values.update(overrides)
    return PollerSettings(**values)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def running() -> Iterator[Callable[[Poller], Poller]]:
    started: list[tuple[Poller, threading.Thread]] = []

    def start(poller: Poller) -> Poller:
        started.append((poller, poller.start()))
        return poller

    yield start
    for poller, thread in started:
        poller.stop()
        thread.join(timeout=15)
        assert not thread.is_alive()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offsets = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], 10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in offsets}


def test_batches_arrive_in_the_msk_shape_and_offsets_are_committed_after_the_handler(
    kafka_bootstrap: str, topic: str, running: Callable[[Poller], Poller]
) -> None:
    values: list[dict[str, Any] | bytes | None] = [message() for _ in range(5)] + [b"raw", None]
    produce(kafka_bootstrap, topic, values)
    events: list[dict[str, Any]] = []
    settings = settings_for(kafka_bootstrap, topic)

    running(Poller(settings, events.append))
    wait_for(lambda: sum(len(MskEvent.from_dict(e)) for e in events) == len(values))
    wait_for(lambda: committed(kafka_bootstrap, settings.group_id, topic) == {0: 4, 1: 3})

    event = events[0]
    assert event["eventSource"] == "aws:kafka"
    assert event["bootstrapServers"] == kafka_bootstrap
    assert event["eventSourceArn"].startswith("arn:aws:kafka:")
    received = [record for e in events for record in MskEvent.from_dict(e)]
    assert sorted(r.value for r in received if r.value) == sorted(
        v for v in map(encode, values) if v
    )
    assert sum(r.value is None for r in received) == 1
    raw = next(iter(event["records"].values()))[0]
    assert set(raw) >= {"topic", "partition", "offset", "timestamp", "timestampType", "key"}
    assert raw["headers"] == [{"source": list(b"test")}]
    assert raw["timestampType"] == "CREATE_TIME"
    assert all(key == f"{topic}-{group[0]['partition']}" for key, group in event["records"].items())


def test_a_failing_handler_gets_the_same_batch_again_and_nothing_is_committed(
    kafka_bootstrap: str, topic: str, running: Callable[[Poller], Poller]
) -> None:
    produce(kafka_bootstrap, topic, [message() for _ in range(4)])
    calls: list[list[tuple[str, int, int]]] = []
    healthy = threading.Event()

    def handler(event: dict[str, Any]) -> None:
        calls.append([record.position for record in MskEvent.from_dict(event)])
        if not healthy.is_set():
            raise RuntimeError("database down")

    settings = settings_for(kafka_bootstrap, topic)
    poller = running(Poller(settings, handler))
    wait_for(lambda: poller.failures >= 3)
    assert committed(kafka_bootstrap, settings.group_id, topic) == {0: -1001, 1: -1001}
    first = calls[0]
    assert all(call == first for call in calls)  # retried, never moved on
    healthy.set()
    wait_for(lambda: committed(kafka_bootstrap, settings.group_id, topic) == {0: 2, 1: 2})
    assert {position for call in calls for position in call} == {
        (topic, partition, offset) for partition in (0, 1) for offset in (0, 1)
    }


def test_every_message_is_stored_exactly_once_across_a_database_outage(
    kafka_bootstrap: str,
    topic: str,
    embedded_postgres: EmbeddedPostgres,
    running: Callable[[Poller], Poller],
) -> None:
    settings = DatabaseSettings.from_url(embedded_postgres.url("outage"), timeout=5.0)
    writer = Writer(WriterSettings(database=settings, retention=RetentionSettings()))
    first = [message(site_id=f"s{i % 4}") for i in range(60)]
    second = [message(site_id=f"s{i % 4}") for i in range(60)]
    migrate(writer.database)  # so that counting can start before the first batch
    poller = running(Poller(settings_for(kafka_bootstrap, topic, batch_size=20), writer.handle))
    produce(kafka_bootstrap, topic, first)
    with Database(settings) as check:

        def stored() -> int:
            with check.transaction() as connection:
                return int(connection.run("SELECT count(*) FROM webchecker.checks")[0][0])

        wait_for(lambda: stored() == 60)
        check.close()
        embedded_postgres.stop()
        produce(kafka_bootstrap, topic, second)
        wait_for(lambda: poller.failures > 0)  # the writer cannot store: retrying
        embedded_postgres.start()
        wait_for(lambda: stored() == 120)
        time.sleep(0.5)  # let any redelivery happen before counting duplicates
        with check.transaction() as connection:
            ids = connection.run(
                "SELECT check_id::text, count(*) FROM webchecker.checks GROUP BY 1"
            )
            rollup = connection.run("SELECT sum(checks) FROM webchecker.checks_hourly")[0][0]
    assert {row[0] for row in ids} == {m["check_id"] for m in first + second}
    assert {row[1] for row in ids} == {1}
    assert rollup == 120
    writer.close()
