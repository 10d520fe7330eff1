"""`webchecker topic`: the latest check results on the Kafka topic, one JSON message a line.

Reads ``KAFKA_BOOTSTRAP_SERVERS`` and ``KAFKA_TOPIC`` (``source .webchecker/env`` sets both
for the local stack) with confluent-kafka, from the start of the topic, and prints the last
``--count`` messages. It joins no consumer group that matters and commits nothing, so the
writer's position is untouched.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import uuid
from typing import Any

from webchecker.config import env_str
from webchecker.exceptions import ConfigurationError

DEFAULT_TOPIC = "webchecker.checks"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "topic",
        help="print the latest check results on the Kafka topic",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--count", type=int, default=10, metavar="N", help="how many (default 10; 0: all)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up reading after this long (default 10)",
    )
    parser.set_defaults(handler=_topic)


def _topic(args: argparse.Namespace) -> int:
    from confluent_kafka import Consumer, KafkaError

    bootstrap = env_str("KAFKA_BOOTSTRAP_SERVERS", "")
    if not bootstrap:
        raise ConfigurationError(
            "KAFKA_BOOTSTRAP_SERVERS is not set (for the local stack: source .webchecker/env)"
        )
    topic = env_str("KAFKA_TOPIC", DEFAULT_TOPIC)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"webchecker-topic-{uuid.uuid4()}",  # a throwaway group
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "session.timeout.ms": 6000,
            "log_level": 3,
        }
    )
    latest: collections.deque[bytes] = collections.deque(maxlen=args.count or None)
    deadline = time.monotonic() + args.timeout
    try:
        consumer.subscribe([topic])
        partitions: set[int] | None = None  # those not read to their end yet
        while time.monotonic() < deadline and partitions != set():
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if partitions is None:
                assigned = consumer.assignment()
                partitions = {part.partition for part in assigned} if assigned else None
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if partitions is not None:
                        partitions.discard(int(message.partition() or 0))
                    continue
                raise ConfigurationError(f"Kafka at {bootstrap}: {error.str()}")
            latest.append(message.value() or b"")
    finally:
        consumer.close()
    for value in latest:
        print(value.decode("utf-8", errors="replace"))
    if partitions != set():
        print(f"(stopped after {args.timeout:g}s: the topic may hold more)", file=sys.stderr)
    return 0
