"""Slow-site reports through SQS (moto): the checker sends, the scheduler drains and orders.

The checker handler runs against a real broker and real HTTP targets on loopback; SQS,
Parameter Store and Lambda are moto's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.fixtures.aws import AWS_REGION, InvokeRecorder, put_parameters
from tests.fixtures.http_targets import HttpTargets
from tests.fixtures.lambda_context import FakeLambdaContext, cold_start, load_event
from tests.integration.test_scheduler import load_app
from webchecker.schedule.slow_sites import SlowSiteHints, SlowSitesQueue, encode_report

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

ROOT = "/webchecker/sites"


@pytest.fixture
def queue_url(sqs_client: SQSClient) -> str:
    return sqs_client.create_queue(QueueName=f"slow-sites-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def test_reports_are_drained_learned_and_deleted(sqs_client: SQSClient, queue_url: str) -> None:
    queue = SlowSitesQueue(queue_url, client=sqs_client)
    for n in range(25):  # more than one receive (10 messages each)
        assert queue.send({f"site-{n}": 1.0 + n})
    assert queue.send({}) is True  # nothing slow: nothing sent
    hints = SlowSiteHints()
    drained = queue.drain(lambda slow: hints.learn(slow, now=0))
    assert drained == 25
    assert [hints.seconds(f"site-{n}") for n in (0, 24)] == [1.0, 25.0]
    assert queue.drain(lambda slow: hints.learn(slow, now=0)) == 0  # deleted


def test_a_bad_message_is_dropped_with_a_warning_and_the_others_learned(
    sqs_client: SQSClient, queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    for body in ("not json", '{"v": 1, "slow": {"x": -3}}', encode_report({"good": 9.0})):
        sqs_client.send_message(QueueUrl=queue_url, MessageBody=body)
    hints = SlowSiteHints()
    with caplog.at_level(logging.WARNING, logger="webchecker.schedule.slow_sites"):
        assert SlowSitesQueue(queue_url, client=sqs_client).drain(lambda s: hints.learn(s, 0)) == 3
    assert hints.seconds("good") == 9.0
    assert len(hints) == 1
    dropped = [r.getMessage() for r in caplog.records if "report dropped" in r.getMessage()]
    assert len(dropped) == 2
    assert any("not JSON" in m for m in dropped)
    assert any(">= 0" in m for m in dropped)
    assert sqs_client.receive_message(QueueUrl=queue_url).get("Messages", []) == []  # deleted too


def test_a_queue_that_cannot_be_reached_never_raises(
    sqs_client: SQSClient, caplog: pytest.LogCaptureFixture
) -> None:
    missing = SlowSitesQueue(
        f"https://sqs.{AWS_REGION}.amazonaws.com/123456789012/no-such-queue", client=sqs_client
    )
    with caplog.at_level(logging.WARNING, logger="webchecker.schedule.slow_sites"):
        assert missing.send({"a": 5.0}) is False
        assert missing.drain(lambda slow: None) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("slow sites not reported") for m in messages)
    assert any(m.startswith("slow-site reports not read") for m in messages)


def test_the_scheduler_starts_each_shards_reported_sites_first(
    monkeypatch: pytest.MonkeyPatch,
    ssm_client: SSMClient,
    sqs_client: SQSClient,
    queue_url: str,
    checker_function: str,
    lambda_context: FakeLambdaContext,
) -> None:
    sites = {f"{ROOT}/s{n:02d}": {"url": f"http://127.0.0.1:9/{n}"} for n in range(12)}
    put_parameters(ssm_client, sites)
    SlowSitesQueue(queue_url, client=sqs_client).send({"s10": 10.0, "s05": 2.0})
    SlowSitesQueue(queue_url, client=sqs_client).send({"s02": 4.5})
    app = load_app(monkeypatch, CHECKS_PER_INVOCATION="4", SLOW_SITES_QUEUE_URL=queue_url)
    recorder = InvokeRecorder()
    recorder.attach(app.INVOKER.client)

    result = app.lambda_handler(load_event("scheduler-scheduled"), lambda_context)

    assert result["slow_reports"] == 2
    shards = [[site["id"] for site in i.payload["sites"]] for i in recorder.invokes]
    assert sorted(shards) == [
        ["s02", "s00", "s01", "s03"],
        ["s05", "s04", "s06", "s07"],
        ["s10", "s08", "s09", "s11"],
    ]
    # The next tick remembers them (the queue is empty now).
    recorder.invokes.clear()
    again = app.lambda_handler({"time": "2026-11-27T19:51:00Z"}, lambda_context)
    assert again["slow_reports"] == 0
    assert sorted(i.payload["sites"][0]["id"] for i in recorder.invokes) == ["s02", "s05", "s10"]


def test_without_a_queue_the_scheduler_keeps_the_order(
    monkeypatch: pytest.MonkeyPatch,
    ssm_client: SSMClient,
    checker_function: str,
    lambda_context: FakeLambdaContext,
) -> None:
    put_parameters(
        ssm_client, {f"{ROOT}/s{n}": {"url": f"http://127.0.0.1:9/{n}"} for n in range(3)}
    )
    monkeypatch.delenv("SLOW_SITES_QUEUE_URL", raising=False)
    app = load_app(monkeypatch)
    assert app.SLOW_SITES is None
    recorder = InvokeRecorder()
    recorder.attach(app.INVOKER.client)
    result = app.lambda_handler(load_event("scheduler-scheduled"), lambda_context)
    assert result["slow_reports"] == 0
    (invoke,) = recorder.invokes
    assert [site["id"] for site in invoke.payload["sites"]] == ["s0", "s1", "s2"]


def test_the_checker_reports_its_slow_sites(
    monkeypatch: pytest.MonkeyPatch,
    sqs_client: SQSClient,
    queue_url: str,
    kafka_bootstrap: str,
    http_targets: HttpTargets,
    lambda_context: FakeLambdaContext,
) -> None:
    for name, value in {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC": f"test.slow.{uuid.uuid4().hex[:12]}",
        "KAFKA_AUTH": "none",
        "KAFKA_TOPIC_PARTITIONS": "1",
        "CHECKER_ALLOW_PRIVATE_TARGETS": "true",
        "POWERTOOLS_SERVICE_NAME": f"checker-{uuid.uuid4().hex[:8]}",
        "SLOW_SITES_QUEUE_URL": queue_url,
    }.items():
        monkeypatch.setenv(name, value)
    app = cold_start("checker")
    base = f"http://127.0.0.1:{http_targets.port}"
    event: dict[str, Any] = {
        "scheduled_at": "2026-12-03T08:00:00Z",
        "sites": [
            {"id": "fast", "url": f"{base}/ok"},
            {"id": "hangs", "url": f"{base}/slow/5", "timeout": 1},
        ],
    }
    summary = app.lambda_handler(event, lambda_context)
    assert summary["checked"] == 2

    (message,) = sqs_client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    report = json.loads(message["Body"])
    assert report["v"] == 1
    assert list(report["slow"]) == ["hangs"]  # the fast site is not reported
    assert 1.0 <= report["slow"]["hangs"] < 3.0


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A loopback port that accepts connections and never answers (a black-holed route)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    server.close()


@pytest.mark.timeout(60)  # botocore's defaults would wait 60 s per attempt, retried
def test_an_sqs_that_never_answers_holds_neither_end_for_long(
    monkeypatch: pytest.MonkeyPatch, aws_environment: None, silent_endpoint: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", silent_endpoint)
    queue = SlowSitesQueue(f"{silent_endpoint}/123456789012/slow-sites")  # its own client
    assert queue.send({"a": 5.0}) is False  # the checker's results are already delivered
    assert queue.drain(lambda slow: None) == 0  # the tick goes on with what it knew
