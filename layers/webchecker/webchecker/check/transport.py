"""Kafka transport: publishing check results to the topic, and reading them back.

``KafkaSettings.from_env()`` reads the connection and topic settings once per container;
a :class:`KafkaPublisher` creates its confluent-kafka producer before the first
invocation's checks, and reuses it for every later invocation of the same container. Each
result is sent as soon as its check ends; ``flush``, at the end of the invocation, raises
``PublishError`` unless every message was delivered within the delivery timeout, which is
kept well below the Lambda timeout.

MSK does not create topics on first use, so the publisher makes sure the topic exists (once
per container) with the configured partitions, replication and retention. With
``KAFKA_AUTH=iam`` the clients authenticate with SASL/OAUTHBEARER, signing tokens with
``aws-msk-iam-sasl-signer-python``; ``none`` is plaintext, for local brokers.

librdkafka's errors go to the ``webchecker.check.transport`` logger and its own log lines to
``webchecker.check.transport.librdkafka`` (never straight to stderr).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from webchecker.config import env_bool, env_choice, env_int, env_optional, env_str
from webchecker.exceptions import ConfigurationError, PublishError
from webchecker.results import CheckResult

logger = logging.getLogger(__name__)
# librdkafka's own log lines (it would print them to stderr): a child, to tune on its own.
librdkafka_logger = logging.getLogger(f"{__name__}.librdkafka")

DEFAULT_TOPIC = "webchecker.checks"
AUTH_MODES = ("iam", "none")
DEFAULT_AUTH = "none"
COMPRESSION_TYPES = ("zstd", "lz4", "gzip", "snappy", "none")
DEFAULT_COMPRESSION = "zstd"
DEFAULT_DELIVERY_TIMEOUT_MS = 30_000  # the checker's Lambda timeout must be well above this
# Results leave as their checks end, so the producer batches what ends within this window:
# 20 ms made 5x the produce requests and cost the checker 0.54 instead of 0.45 ms of CPU per
# check (bench_pipeline); 0.2 s is nothing beside a shard's 36 s spread.
DEFAULT_LINGER_MS = 200
DEFAULT_TOPIC_PARTITIONS = 6
DEFAULT_TOPIC_REPLICATION_FACTOR = -1  # the cluster's default.replication.factor
DEFAULT_TOPIC_RETENTION_MS = 7 * 24 * 3600 * 1000
# Looking the topic up (and creating it) has its own, shorter bound.
MAX_METADATA_TIMEOUT_S = 10.0


@dataclass(frozen=True, kw_only=True)
class KafkaSettings:
    """Where and how check results are published; built once with :meth:`from_env`."""

    bootstrap_servers: str
    topic: str = DEFAULT_TOPIC
    auth: str = DEFAULT_AUTH
    region: str | None = None
    client_id: str = "webchecker"
    delivery_timeout_ms: int = DEFAULT_DELIVERY_TIMEOUT_MS
    compression: str = DEFAULT_COMPRESSION
    linger_ms: int = DEFAULT_LINGER_MS
    create_topic: bool = True
    topic_partitions: int = DEFAULT_TOPIC_PARTITIONS
    topic_replication_factor: int = DEFAULT_TOPIC_REPLICATION_FACTOR
    topic_retention_ms: int = DEFAULT_TOPIC_RETENTION_MS

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ConfigurationError("KAFKA_BOOTSTRAP_SERVERS is required (host:port,...)")
        if self.auth not in AUTH_MODES:
            raise ConfigurationError(f"KAFKA_AUTH={self.auth!r}: expected one of iam, none")
        if self.auth == "iam" and not self.region:
            raise ConfigurationError("KAFKA_AUTH=iam needs AWS_REGION (to sign the MSK token)")
        if self.compression not in COMPRESSION_TYPES:
            raise ConfigurationError(
                f"KAFKA_COMPRESSION={self.compression!r}: expected one of "
                f"{', '.join(COMPRESSION_TYPES)}"
            )
        if self.linger_ms >= self.delivery_timeout_ms:
            raise ConfigurationError("KAFKA_LINGER_MS must be below KAFKA_DELIVERY_TIMEOUT_MS")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSettings:
        """Settings from ``KAFKA_*`` variables and ``AWS_REGION``; errors name the variable."""
        bootstrap = env_optional("KAFKA_BOOTSTRAP_SERVERS", env)
        if bootstrap is None:
            raise ConfigurationError("KAFKA_BOOTSTRAP_SERVERS is required (host:port,...)")
        return cls(
            bootstrap_servers=bootstrap,
            topic=env_str("KAFKA_TOPIC", DEFAULT_TOPIC, env),
            auth=env_choice("KAFKA_AUTH", DEFAULT_AUTH, AUTH_MODES, env),
            region=env_optional("AWS_REGION", env),
            client_id=env_str("KAFKA_CLIENT_ID", "webchecker", env),
            delivery_timeout_ms=env_int(
                "KAFKA_DELIVERY_TIMEOUT_MS",
                DEFAULT_DELIVERY_TIMEOUT_MS,
                env,
                minimum=1000,
                maximum=300_000,
            ),
            compression=env_choice(
                "KAFKA_COMPRESSION", DEFAULT_COMPRESSION, COMPRESSION_TYPES, env
            ),
            linger_ms=env_int("KAFKA_LINGER_MS", DEFAULT_LINGER_MS, env, minimum=0, maximum=5000),
            create_topic=env_bool("KAFKA_CREATE_TOPIC", True, env),
            topic_partitions=env_int(
                "KAFKA_TOPIC_PARTITIONS", DEFAULT_TOPIC_PARTITIONS, env, minimum=1, maximum=1000
            ),
            topic_replication_factor=env_int(
                "KAFKA_TOPIC_REPLICATION_FACTOR",
                DEFAULT_TOPIC_REPLICATION_FACTOR,
                env,
                minimum=-1,
                maximum=10,
            ),
            topic_retention_ms=env_int(
                "KAFKA_TOPIC_RETENTION_MS", DEFAULT_TOPIC_RETENTION_MS, env, minimum=-1
            ),
        )

    @property
    def delivery_timeout_s(self) -> float:
        return self.delivery_timeout_ms / 1000.0

    def client_config(self) -> dict[str, Any]:
        """What every client (producer, consumer, admin) needs: servers, auth, logging."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "logger": librdkafka_logger,
            "error_cb": _log_error,
        }
        if self.auth == "iam":
            import certifi  # a dependency of httpx; librdkafka's own CA lookup varies by build

            assert self.region is not None  # checked in __post_init__
            config.update(
                {
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanisms": "OAUTHBEARER",
                    "oauth_cb": msk_iam_token_callback(self.region),
                    "ssl.ca.location": certifi.where(),
                }
            )
        return config

    def producer_config(self) -> dict[str, Any]:
        """The producer: idempotent, compressed, batched, and bounded in delivery time."""
        return {
            **self.client_config(),
            "enable.idempotence": True,  # implies acks=all and safe retries
            "acks": "all",
            "compression.type": self.compression,
            "linger.ms": self.linger_ms,
            "message.timeout.ms": self.delivery_timeout_ms,  # the delivery.timeout.ms bound
            "socket.connection.setup.timeout.ms": min(10_000, self.delivery_timeout_ms),
        }


def msk_iam_token_callback(region: str) -> Callable[[str], tuple[str, float]]:
    """librdkafka's ``oauth_cb``: an MSK IAM token and its expiry in epoch *seconds*."""

    def callback(_oauthbearer_config: str) -> tuple[str, float]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000.0  # the signer answers in milliseconds

    return callback


def _log_error(error: KafkaError) -> None:
    # Transient errors (a broker down, a reconnect) are retried by librdkafka; the publish
    # outcome is decided by the delivery reports, so these are warnings, not failures.
    logger.warning("kafka client error: %s", error.str(), extra={"kafka_error": error.name()})


class KafkaPublisher:
    """Publishes check results; one per container, its producer created on first use.

    An invocation calls :meth:`prepare` before its checks, :meth:`send` as each check ends
    (the message leaves within ``linger.ms`` while the other checks go on, so a result
    does not wait for the slowest site of its shard), and :meth:`flush` at the end.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._producer: Producer | None = None
        self._topic_ready = not settings.create_topic
        self._round = _Round()

    def prepare(self) -> None:
        """Makes sure of the topic and the producer (once per container), so that no check
        waits for them; raises ``PublishError`` when the cluster cannot be reached."""
        self._round = _Round()  # nothing left over from an invocation that did not flush
        self._ready_producer()

    def send(self, result: CheckResult) -> None:
        """Queues one message (key = site id) and returns at once; never raises: a message
        that cannot be queued counts as not delivered, and :meth:`flush` reports it."""
        round_ = self._round
        round_.sent += 1
        producer = self._producer
        if producer is None:  # prepare() was not called, or failed: no I/O on the event loop
            round_.failures.append("the producer was not prepared before the checks")
            return
        try:
            value = result.to_json()
            while True:
                try:
                    producer.produce(
                        self.settings.topic,
                        key=result.site_id.encode(),
                        value=value,
                        on_delivery=round_.on_delivery,
                    )
                    break
                except BufferError:  # the local queue is full: let some messages leave
                    producer.poll(0.05)
        except KafkaException as error:
            round_.failures.append(str(error))

    def flush(self) -> int:
        """Waits for every message sent since the last flush; returns how many arrived.

        Raises ``PublishError`` if any message was not delivered within the delivery timeout.
        """
        round_, self._round = self._round, _Round()
        if not round_.sent:
            return 0
        topic = self.settings.topic
        remaining = 0
        if self._producer is not None:
            try:
                # The message timeout bounds each message; the margin only covers callbacks.
                remaining = self._producer.flush(self.settings.delivery_timeout_s + 2.0)
            except KafkaException as error:
                round_.failures.append(str(error))
        if remaining or round_.failures or round_.delivered < round_.sent:
            # Drop what is still queued, so that a later invocation does not deliver stale
            # results behind its own (the invocation is retried), and start the next
            # invocation on a fresh producer: an idempotent producer can be left fenced.
            if self._producer is not None:
                self._producer.purge(in_queue=True, in_flight=False)
                self._producer.poll(0)
                self._producer = None
            missing = round_.sent - round_.delivered
            reason = round_.failures[0] if round_.failures else "not delivered before the timeout"
            raise PublishError(
                f"{missing} of {round_.sent} check results not delivered to {topic} on "
                f"{self.settings.bootstrap_servers}: {reason}"
            )
        return round_.delivered

    def publish(self, results: Sequence[CheckResult]) -> int:
        """Sends every result and flushes: :meth:`prepare`, :meth:`send`, :meth:`flush`."""
        if not results:
            return 0
        self.prepare()
        for result in results:
            self.send(result)
        return self.flush()

    def ensure_topic(self) -> None:
        """Creates the topic if it does not exist yet (MSK does not auto-create topics)."""
        settings = self.settings
        timeout = min(MAX_METADATA_TIMEOUT_S, settings.delivery_timeout_s)
        admin = AdminClient(settings.client_config())
        try:
            metadata = admin.list_topics(timeout=timeout)
        except KafkaException as error:
            raise PublishError(
                f"cannot reach the Kafka cluster at {settings.bootstrap_servers}: "
                f"{_kafka_reason(error)}"
            ) from error
        if settings.topic in metadata.topics:
            return
        new_topic = NewTopic(
            settings.topic,
            num_partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            config={"retention.ms": str(settings.topic_retention_ms)},
        )
        futures = admin.create_topics(
            [new_topic], operation_timeout=timeout, request_timeout=timeout
        )
        try:
            futures[settings.topic].result(timeout=timeout + 1.0)
        except KafkaException as error:
            if error.args and error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return  # another container created it first
            raise PublishError(
                f"cannot create topic {settings.topic}: {_kafka_reason(error)}"
            ) from error
        logger.info(
            "created topic %s",
            settings.topic,
            extra={"partitions": settings.topic_partitions, "topic": settings.topic},
        )

    def close(self, timeout: float = 5.0) -> None:
        """Delivers what is still queued (up to ``timeout``) and drops the producer."""
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(timeout)

    def _ready_producer(self) -> Producer:
        if not self._topic_ready:
            self.ensure_topic()
            self._topic_ready = True
        if self._producer is None:
            try:
                self._producer = Producer(self.settings.producer_config())
            except KafkaException as error:
                raise ConfigurationError(f"invalid Kafka producer settings: {error}") from error
        return self._producer


@dataclass
class _Round:
    """What one invocation sent, and what the delivery reports said of it."""

    sent: int = 0
    delivered: int = 0
    failures: list[str] = field(default_factory=list)

    def on_delivery(self, error: KafkaError | None, _message: object) -> None:
        if error is None:
            self.delivered += 1
        else:
            self.failures.append(error.str())


def _kafka_reason(error: KafkaException) -> str:
    if error.args and isinstance(error.args[0], KafkaError):
        return str(error.args[0].str())
    return str(error)


@dataclass(frozen=True)
class ConsumedMessage:
    """One record read back from a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


def read_messages(
    settings: KafkaSettings,
    *,
    count: int,
    timeout: float = 10.0,
    topic: str | None = None,
) -> list[ConsumedMessage]:
    """Reads up to ``count`` records from the start of every partition of the topic.

    Partitions are assigned directly (no consumer group join, which on Tansu waits about
    half of ``session.timeout.ms``) and nothing is committed. Returns early once ``count``
    records arrived; otherwise what arrived within ``timeout`` seconds, ordered by
    partition and offset.
    """
    topic = topic or settings.topic
    deadline = time.monotonic() + timeout
    consumer = Consumer(
        {
            **settings.client_config(),
            "group.id": f"webchecker-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    messages: list[ConsumedMessage] = []
    try:
        partitions: list[int] = []
        while not partitions:
            metadata = consumer.list_topics(topic, timeout=max(0.1, deadline - time.monotonic()))
            described = metadata.topics.get(topic)
            if described is not None and described.error is None:
                partitions = sorted(described.partitions)
            elif time.monotonic() > deadline:
                return messages
            else:
                time.sleep(0.1)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(min(0.5, max(0.0, deadline - time.monotonic())))
            if message is None or message.error() is not None:
                continue
            messages.append(
                ConsumedMessage(
                    topic=message.topic() or topic,
                    partition=message.partition() or 0,
                    offset=message.offset() or 0,
                    key=message.key(),
                    value=message.value(),
                    timestamp_ms=message.timestamp()[1],
                )
            )
    finally:
        consumer.close()
    return sorted(messages, key=lambda m: (m.partition, m.offset))
