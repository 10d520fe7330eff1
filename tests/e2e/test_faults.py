"""Faults in the running pipeline: after recovery every check is stored exactly once.

The broker restarted between ticks; PostgreSQL stopped for a while and restarted; a poison
message in the topic; a checker invocation that fails (the broker is down when it
publishes) and is retried by the local Lambda API like an AWS async invoke.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.e2e.conftest import RETRY_DELAYS, put_sites, rows, wait_rows
from webchecker.local.stack import CHECKER, LocalStack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def demo_sites(stack: LocalStack, prefix: str) -> list[dict[str, Any]]:
    assert stack.demo is not None
    demo = stack.demo.url("").rstrip("/")
    return [
        {"id": f"{prefix}-healthy", "url": f"{demo}/healthy", "regex": "healthy"},
        {"id": f"{prefix}-failing", "url": f"{demo}/failing"},
        {"id": f"{prefix}-flapping", "url": f"{demo}/flapping"},
    ]


def assert_exactly_once(
    stored: Sequence[dict[str, Any]], site_ids: Sequence[str], ticks: int
) -> None:
    """Every site has one row per tick: none lost, none stored twice."""
    per_check = Counter((row["site_id"], row["scheduled_at"]) for row in stored)
    assert set(per_check.values()) == {1}, per_check
    assert len({row["check_id"] for row in stored}) == len(stored)
    assert Counter(row["site_id"] for row in stored) == dict.fromkeys(site_ids, ticks)


def test_broker_restart_between_ticks(stack: LocalStack) -> None:
    assert stack.broker is not None
    sites = demo_sites(stack, "f1")
    ids = [site["id"] for site in sites]
    put_sites(stack, sites)
    stack.tick()
    wait_rows(stack, ids, 3)

    # Checks published while the writer's event source mapping is off wait in the topic...
    stack.stop_poller()
    try:
        stack.tick()
        assert stack.lambda_api is not None
        assert stack.lambda_api.drain(30)
        assert len(rows(stack, ids)) == 3  # only the first tick: the rest waits in the topic
        # ... and survive a broker restart: Tansu's S3 storage (on moto) keeps the topic,
        # its messages and the writer's committed offsets (in-memory storage loses all three).
        stack.broker.stop()
        stack.broker.start()
    finally:
        stack.start_poller()

    stack.tick()
    stored = wait_rows(stack, ids, 9)
    assert_exactly_once(stored, ids, 3)


def test_postgres_stopped_and_restarted(stack: LocalStack) -> None:
    assert stack.postgres is not None
    assert stack.poller is not None
    sites = demo_sites(stack, "f2")
    ids = [site["id"] for site in sites]
    put_sites(stack, sites)
    stack.tick()
    wait_rows(stack, ids, 3)
    failures_before = stack.poller.failures

    stack.postgres.stop()
    try:
        # Checks go on while the database is away: they wait in the topic.
        stack.tick()
        stack.tick()
        assert stack.lambda_api is not None
        assert stack.lambda_api.drain(30)
        deadline = time.monotonic() + 30
        while stack.poller.failures == failures_before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stack.poller.failures > failures_before  # the writer failed and was retried
    finally:
        stack.postgres.start()

    stored = wait_rows(stack, ids, 9)
    assert_exactly_once(stored, ids, 3)


def test_poison_message_is_rejected_and_the_rest_stored(stack: LocalStack) -> None:
    sites = demo_sites(stack, "f3")
    ids = [site["id"] for site in sites]
    put_sites(stack, sites)
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    poison = [b"not json at all", b'{"schema": 1, "site_id": "f3-poison"}']
    for value in poison:
        producer.produce(stack.settings.topic, key=b"f3-poison", value=value)
    producer.produce(stack.settings.topic, key=b"f3-poison", value=None)
    assert producer.flush(10) == 0

    stack.tick()
    stored = wait_rows(stack, ids, 3)
    assert_exactly_once(stored, ids, 1)
    assert rows(stack, ["f3-poison"]) == []

    with stack.database.transaction() as connection:
        rejects = connection.run(
            "SELECT raw, reason FROM webchecker.check_rejects WHERE raw = ANY(:raw) OR raw IS NULL",
            raw=poison,
        )
    assert sorted(bytes(raw) if raw is not None else b"" for raw, _ in rejects) == sorted(
        [b"", *poison]
    )
    assert all(reason for _, reason in rejects)


def test_failed_checker_invocation_is_retried(stack: LocalStack) -> None:
    assert stack.broker is not None
    assert stack.lambda_api is not None
    api = stack.lambda_api
    sites = demo_sites(stack, "f4")
    ids = [site["id"] for site in sites]
    put_sites(stack, sites)

    def checker_failures() -> int:
        # only the checker's: the notifier also runs after each tick and may fail on its own
        return sum(1 for a in api.attempts if a.function == CHECKER and not a.ok)

    failed_before = checker_failures()

    stack.broker.stop()
    try:
        summary = stack.tick()
        assert summary["invocations"] == 1
        # The checker cannot publish (delivery timeout 2 s) and raises: attempt 1 fails.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if checker_failures() > failed_before:
                break
            time.sleep(0.05)
    finally:
        stack.broker.start()  # back before the retry, which comes RETRY_DELAYS[0] later

    assert api.drain(RETRY_DELAYS[0] + 60)
    first = next(a for a in reversed(api.attempts) if a.function == CHECKER and a.attempt == 1)
    attempts = [a for a in api.attempts if a.request_id == first.request_id]
    # Failed while the broker was down, then retried (a second retry is allowed: the
    # producer may still be reconnecting when the first retry runs) until it succeeded.
    assert (attempts[0].attempt, attempts[0].ok) == (1, False)
    assert "PublishError" in (attempts[0].error or "")
    assert [a.attempt for a in attempts] == list(range(1, len(attempts) + 1))
    assert len(attempts) in (2, 3)
    assert attempts[-1].ok
    assert not api.failures

    stored = wait_rows(stack, ids, 3)
    assert_exactly_once(stored, ids, 1)
