"""The local event source mapping: Kafka batches in the MSK event shape, handed to the writer.

What AWS does for the writer, done on a laptop: a consumer group on the topic reads up to
``batch_size`` records or for ``batch_window`` seconds, wraps them in the exact MSK event
(base64 key and value, headers as byte lists), calls the handler, and commits the offsets
only after the handler returned. When the handler raises, the same batch is retried with
exponential backoff and the poller does not move on (at-least-once, like the mapping with
unlimited retries). ``stop_event`` ends it, so it can run in a thread.

Tansu (the embedded broker) waits about half of ``session.timeout.ms`` before the first
group assignment, hence the short default; its "latest" offset is unreliable, so a new
group starts from the earliest offset.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from webchecker.config import env_float, env_int, env_str
from webchecker.exceptions import ConfigurationError
from webchecker.store.msk import LOCAL_EVENT_SOURCE_ARN, KafkaRecord, MskEvent

logger = logging.getLogger(__name__)

DEFAULT_TOPIC = "webchecker.checks"
DEFAULT_GROUP_ID = "webchecker-writer"
DEFAULT_BATCH_SIZE = 500
DEFAULT_BATCH_WINDOW = 0.5  # seconds, MSK's default batching window
_TIMESTAMP_TYPES = {1: "CREATE_TIME", 2: "LOG_APPEND_TIME"}

Handler = Callable[[dict[str, Any]], object]


@dataclass(frozen=True, kw_only=True)
class PollerSettings:
    """Where to read and how to batch (``POLLER_*`` variables for the local stack)."""

    bootstrap_servers: str
    topic: str = DEFAULT_TOPIC
    group_id: str = DEFAULT_GROUP_ID
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_window: float = DEFAULT_BATCH_WINDOW
    session_timeout_ms: int = 2000
    retry_initial: float = 0.2
    retry_max: float = 5.0
    event_source_arn: str = LOCAL_EVENT_SOURCE_ARN

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            raise ConfigurationError("KAFKA_BOOTSTRAP_SERVERS: required for the poller")
        if self.batch_size < 1 or self.batch_window <= 0:
            raise ConfigurationError("the poller needs a batch size >= 1 and a window > 0")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, bootstrap_servers: str | None = None
    ) -> PollerSettings:
        return cls(
            bootstrap_servers=bootstrap_servers or env_str("KAFKA_BOOTSTRAP_SERVERS", "", env),
            topic=env_str("KAFKA_TOPIC", DEFAULT_TOPIC, env),
            group_id=env_str("POLLER_GROUP_ID", DEFAULT_GROUP_ID, env),
            batch_size=env_int("POLLER_BATCH_SIZE", DEFAULT_BATCH_SIZE, env, minimum=1),
            batch_window=env_float(
                "POLLER_BATCH_WINDOW_SECONDS", DEFAULT_BATCH_WINDOW, env, minimum=0.01
            ),
        )

    def consumer_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": max(100, self.session_timeout_ms // 4),
            # retrying one batch through a long database outage must not cost the group
            # membership (librdkafka's maximum: one day)
            "max.poll.interval.ms": 86_400_000,
            "enable.partition.eof": False,
        }


def to_record(message: Message) -> KafkaRecord:
    """One consumed message as the record MSK would deliver."""
    timestamp_type, timestamp = message.timestamp()
    return KafkaRecord(
        topic=str(message.topic()),
        partition=int(message.partition() or 0),
        offset=int(message.offset() or 0),
        timestamp=int(timestamp),
        timestamp_type=_TIMESTAMP_TYPES.get(timestamp_type, "CREATE_TIME"),
        key=message.key(),
        value=message.value(),
        headers=_headers(message),
    )


def _headers(message: Message) -> tuple[tuple[str, bytes], ...]:
    raw = message.headers() or []
    items = list(raw.items()) if isinstance(raw, dict) else raw
    return tuple(
        (name, value if isinstance(value, bytes) else (value or "").encode())
        for name, value in items
    )


class Poller:
    """Reads batches and hands each, as an MSK event, to ``handler`` until stopped."""

    def __init__(
        self,
        settings: PollerSettings,
        handler: Handler,
        *,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.handler = handler
        self.stop_event = stop_event or threading.Event()
        self.batches = 0  # handled batches (for status displays and tests)
        self.failures = 0  # handler calls that raised

    def run(self) -> None:
        """Polls until ``stop_event`` is set; closes the consumer (leaving the group)."""
        consumer = Consumer(self.settings.consumer_config())
        consumer.subscribe([self.settings.topic])
        try:
            while not self.stop_event.is_set():
                messages = self._poll_batch(consumer)
                if messages and not self._deliver(messages):
                    return  # stopped while retrying: nothing committed, redelivered next time
                if messages:
                    self._commit(consumer, messages)
        finally:
            consumer.close()

    def start(self) -> threading.Thread:
        """Runs in a daemon thread; ``stop()`` ends it."""
        thread = threading.Thread(target=self.run, name="webchecker-poller", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()

    def _poll_batch(self, consumer: Consumer) -> list[Message]:
        batch: list[Message] = []
        for message in consumer.consume(
            num_messages=self.settings.batch_size, timeout=self.settings.batch_window
        ):
            error = message.error()
            if error is None:
                batch.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                logger.warning("poller: %s", error)
        return batch

    def _deliver(self, messages: list[Message]) -> bool:
        """Calls the handler until it succeeds (True) or the poller is stopped (False)."""
        event = MskEvent(
            records=tuple(map(to_record, messages)),
            event_source_arn=self.settings.event_source_arn,
            bootstrap_servers=self.settings.bootstrap_servers,
        ).to_dict()
        delay = self.settings.retry_initial
        while True:
            try:
                result = self.handler(event)
            except Exception as error:
                self.failures += 1
                logger.warning(
                    "writer failed on a batch of %d records (%s); retrying in %.1fs",
                    len(messages),
                    error,
                    delay,
                )
                if self.stop_event.wait(delay):
                    return False
                delay = min(delay * 2, self.settings.retry_max)
                continue
            self.batches += 1
            logger.debug("batch of %d records handled: %s", len(messages), result)
            return True

    def _commit(self, consumer: Consumer, messages: list[Message]) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            key = (str(message.topic()), int(message.partition() or 0))
            next_offsets[key] = max(next_offsets.get(key, 0), int(message.offset() or 0) + 1)
        offsets = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in next_offsets.items()
        ]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:  # e.g. a rebalance took the partition away
            logger.warning("poller: commit failed (%s); the batch will be delivered again", error)
