"""The checker Lambda handler end to end: loopback HTTP targets in, messages on the real broker.

Each test loads ``functions/checker/app.py`` afresh (a cold start) with its own environment
and its own topic, invokes the handler with an event from ``tests/integration/events/``
(its ``$PORT``/``$TLS_PORT`` filled with the target servers' ports) and reads the published
messages back from the broker.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import Any

import pytest

from tests.fixtures.http_targets import HttpTargets
from tests.fixtures.lambda_context import FakeLambdaContext, cold_start, load_event
from webchecker.check.transport import KafkaSettings, read_messages
from webchecker.exceptions import ConfigurationError, InvalidEvent, PublishError
from webchecker.local.embedded.network import free_port
from webchecker.results import CheckResult

pytestmark = pytest.mark.kafka

EVENTS = Path(__file__).resolve().parent / "events"


def loopback_event(targets: HttpTargets) -> dict[str, Any]:
    text = (EVENTS / "checker-loopback.json").read_text()
    filled = Template(text).substitute(PORT=targets.port, TLS_PORT=targets.tls_port)
    event: dict[str, Any] = json.loads(filled)
    return event


@pytest.fixture(autouse=True)
def _restore_package_logger() -> Iterator[None]:
    # A cold start hands the "webchecker" logger to Powertools; other tests expect it as it was.
    package_logger = logging.getLogger("webchecker")
    saved = (package_logger.handlers[:], package_logger.propagate, package_logger.level)
    yield
    package_logger.handlers, package_logger.propagate, package_logger.level = (
        saved[0],
        saved[1],
        saved[2],
    )


@pytest.fixture
def checker_env(monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str) -> KafkaSettings:
    """The checker's environment on the test broker, with a topic of its own."""
    topic = f"test.checker.{uuid.uuid4().hex[:12]}"
    values = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_AUTH": "none",
        "KAFKA_DELIVERY_TIMEOUT_MS": "10000",
        "KAFKA_TOPIC_PARTITIONS": "2",
        "AWS_REGION": "eu-west-1",
        # A service name of its own: Powertools binds a logger's output stream once per name.
        "POWERTOOLS_SERVICE_NAME": f"checker-{uuid.uuid4().hex[:8]}",
        "POWERTOOLS_METRICS_NAMESPACE": "Webchecker",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name in ("CHECKER_ALLOW_PRIVATE_TARGETS", "CHECKER_ALLOWED_NETWORKS", "CHECKER_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return KafkaSettings.from_env()


@pytest.fixture
def allow_loopback(checker_env: KafkaSettings, monkeypatch: pytest.MonkeyPatch) -> KafkaSettings:
    """The checker environment with CHECKER_ALLOW_PRIVATE_TARGETS=true."""
    monkeypatch.setenv("CHECKER_ALLOW_PRIVATE_TARGETS", "true")
    return checker_env


def published(settings: KafkaSettings, count: int) -> dict[str, CheckResult]:
    messages = read_messages(settings, count=count, timeout=15)
    results: dict[str, CheckResult] = {}
    for message in messages:
        assert message.value is not None
        result = CheckResult.from_json(message.value)
        assert message.key == result.site_id.encode()  # key = site id
        results[result.site_id] = result
    assert len(results) == len(messages) == count
    return results


def test_loopback_sites_are_checked_and_published_when_private_targets_are_allowed(
    allow_loopback: KafkaSettings,
    http_targets: HttpTargets,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = cold_start("checker")  # in the test, so that its log stream is the one capsys reads
    event = loopback_event(http_targets)
    summary = app.lambda_handler(event, lambda_context)
    assert summary == {"checked": 7, "ok": 3, "failed": 4, "published": 7, "invalid": 0}

    results = published(allow_loopback, 7)
    assert {site_id: r.error for site_id, r in results.items()} == {
        "healthy": None,
        "second-loopback": None,
        "by-name": None,
        "server-error": "status",
        "wrong-body": "regex",
        "slow": "timeout",
        "tls-untrusted": "tls",
    }
    for site in event["sites"]:
        result = results[site["id"]]
        assert result.url == site["url"]
        assert result.region == "eu-west-1"
        assert result.scheduled_at.isoformat() == "2026-01-05T12:34:00+00:00"
    assert results["healthy"].regex_matched is True
    assert results["wrong-body"].regex_matched is False
    assert results["server-error"].status_code == 503
    assert results["slow"].response_time_ms is None

    output = capsys.readouterr().out
    failure_lines = [json.loads(line) for line in output.splitlines() if '"check failed"' in line]
    assert {line["site_id"]: line["error"] for line in failure_lines} == {
        "server-error": "status",
        "wrong-body": "regex",
        "slow": "timeout",
        "tls-untrusted": "tls",
    }
    assert "do-not-log-me" not in output  # header values never reach the logs
    # Metrics go out as CloudWatch EMF: checks, failures, latency.
    emf = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    assert emf
    assert emf[-1]["Checks"] == [7.0]
    assert emf[-1]["CheckFailures"] == [4.0]
    assert len(emf[-1]["ResponseTime"]) == 5  # the checks where a whole response came


def test_loopback_sites_are_blocked_by_default(
    checker_env: KafkaSettings, http_targets: HttpTargets, lambda_context: FakeLambdaContext
) -> None:
    app = cold_start("checker")
    before = len(http_targets.requests)
    summary = app.lambda_handler(loopback_event(http_targets), lambda_context)
    assert summary == {"checked": 7, "ok": 0, "failed": 7, "published": 7, "invalid": 0}
    results = published(checker_env, 7)
    assert {r.error for r in results.values()} == {"blocked"}
    assert all(r.connect_ms is None for r in results.values())
    assert len(http_targets.requests) == before  # not one request reached the targets


def test_an_invalid_site_is_reported_and_the_others_are_checked(
    allow_loopback: KafkaSettings,
    http_targets: HttpTargets,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = cold_start("checker")
    event = loopback_event(http_targets)
    event["sites"] = [
        event["sites"][0],
        {"id": "typo", "url": "http://127.0.0.1/", "time_out": 3},
        {"id": "no-url"},
    ]
    summary = app.lambda_handler(event, lambda_context)
    assert summary == {"checked": 1, "ok": 1, "failed": 0, "published": 1, "invalid": 2}
    assert set(published(allow_loopback, 1)) == {"healthy"}
    logged = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "invalid" in line
    ]
    reasons = {line["site_index"]: line["reason"] for line in logged if "site_index" in line}
    assert "time_out" in reasons[1]
    assert "url" in reasons[2]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"sites": []}, "scheduled_at"),
        ({"scheduled_at": "yesterday", "sites": []}, "scheduled_at"),
        ({"scheduled_at": "2026-01-05T12:34:00Z"}, "sites"),
        ({"scheduled_at": "2026-01-05T12:34:00Z", "sites": {"id": "x"}}, "sites"),
    ],
)
def test_a_malformed_payload_raises_invalid_event(
    checker_env: KafkaSettings,
    lambda_context: FakeLambdaContext,
    event: dict[str, Any],
    message: str,
) -> None:
    app = cold_start("checker")
    with pytest.raises(InvalidEvent, match=message):
        app.lambda_handler(event, lambda_context)


def test_an_unreachable_broker_makes_the_handler_raise_within_the_delivery_timeout(
    checker_env: KafkaSettings,
    http_targets: HttpTargets,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: FakeLambdaContext,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")  # nothing there
    monkeypatch.setenv("KAFKA_DELIVERY_TIMEOUT_MS", "2000")
    monkeypatch.setenv("CHECKER_ALLOW_PRIVATE_TARGETS", "true")
    app = cold_start("checker")
    event = loopback_event(http_targets)
    event["sites"] = event["sites"][:2]
    started = time.monotonic()
    with pytest.raises(PublishError):
        app.lambda_handler(event, lambda_context)
    assert time.monotonic() - started < 2.0 + 5.0


def test_the_producer_survives_across_invocations_of_one_container(
    allow_loopback: KafkaSettings,
    http_targets: HttpTargets,
    lambda_context: FakeLambdaContext,
) -> None:
    app = cold_start("checker")
    event = loopback_event(http_targets)
    event["sites"] = event["sites"][:1]
    app.lambda_handler(event, lambda_context)
    producer = app.PUBLISHER._producer
    assert producer is not None
    app.lambda_handler(event, lambda_context)
    assert app.PUBLISHER._producer is producer
    assert len(read_messages(allow_loopback, count=2, timeout=15)) == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KAFKA_AUTH", "kerberos"),
        ("CHECKER_CONCURRENCY", "0"),
        ("CHECKER_MAX_BODY_BYTES", "lots"),
        ("CHECKER_ALLOW_PRIVATE_TARGETS", "perhaps"),
        ("CHECKER_ALLOWED_NETWORKS", "10.0.0.0/33"),
        ("CHECKER_CA_BUNDLE", "/nonexistent/ca.pem"),
    ],
)
def test_bad_configuration_fails_at_cold_start_naming_the_variable(
    checker_env: KafkaSettings, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        cold_start("checker")


def test_the_sam_fixture_is_a_valid_checker_payload() -> None:
    from webchecker.check.checker import CheckerEvent

    event = CheckerEvent.from_dict(load_event("checker"))
    assert event.sites
    assert not event.invalid
    # Its sites are public examples: nothing in it points at this machine.
    assert all("127." not in site.url and "localhost" not in site.url for site in event.sites)


def test_hostile_sites_in_the_payload_are_skipped_and_the_rest_published(
    allow_loopback: KafkaSettings,
    http_targets: HttpTargets,
    lambda_context: FakeLambdaContext,
) -> None:
    """Issue 9 items 2 and 3: a lone surrogate or a non-finite number failed the whole shard
    (zero of three messages published)."""
    app = cold_start("checker")
    good = http_targets.url("/ok")
    event = json.loads(
        '{"scheduled_at": "2026-01-05T12:34:00Z", "sites": ['
        '{"id": "surrogate", "url": "http://127.0.0.1/\\ud800"},'
        '{"id": "infinite", "url": "http://127.0.0.1/", "interval": 1e309},'
        '{"id": "not-a-number", "url": "http://127.0.0.1/", "timeout": NaN},'
        f'{{"id": "good", "url": "{good}", "tags": ["prod"], "failure_threshold": 3}}]}}'
    )
    summary = app.lambda_handler(event, lambda_context)

    assert summary == {"checked": 1, "ok": 1, "failed": 0, "published": 1, "invalid": 3}
    result = published(allow_loopback, 1)["good"]
    assert (result.tags, result.failure_threshold, result.success_threshold) == (("prod",), 3, 2)


@pytest.mark.parametrize(
    "scheduled_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "x" * 100_000]
)
def test_a_scheduled_at_out_of_range_is_an_invalid_event(
    checker_env: KafkaSettings, lambda_context: FakeLambdaContext, scheduled_at: str
) -> None:
    """Issue 9 item 13: OverflowError before."""
    app = cold_start("checker")
    with pytest.raises(InvalidEvent, match="scheduled_at") as caught:
        app.lambda_handler({"scheduled_at": scheduled_at, "sites": []}, lambda_context)
    assert len(str(caught.value)) < 300


def test_a_result_is_published_while_a_slower_site_of_the_shard_is_still_checked(
    allow_loopback: KafkaSettings,
    http_targets: HttpTargets,
    lambda_context: FakeLambdaContext,
) -> None:
    """A fast site's result does not wait for the slowest site of its invocation: it is on
    the topic while the other site's target still holds its answer (until the test lets it)."""
    release = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def held_target() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            release.wait(60)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            )

    threading.Thread(target=held_target, daemon=True).start()
    held_port = listener.getsockname()[1]
    app = cold_start("checker")
    event = {
        "scheduled_at": "2026-01-05T12:34:00Z",
        "sites": [
            {"id": "held", "url": f"http://127.0.0.1:{held_port}/", "timeout": 50},
            {"id": "fast", "url": http_targets.url("/ok"), "timeout": 5},
        ],
    }
    summaries: list[dict[str, Any]] = []
    invocation = threading.Thread(
        target=lambda: summaries.append(app.lambda_handler(event, lambda_context))
    )
    invocation.start()
    try:
        first = read_messages(allow_loopback, count=1, timeout=30)
        still_checking = invocation.is_alive()
    finally:
        release.set()
        invocation.join(60)
        listener.close()
    assert [m.key for m in first] == [b"fast"]
    assert still_checking, "the fast result arrived only once the invocation had ended"
    assert summaries == [{"checked": 2, "ok": 2, "failed": 0, "published": 2, "invalid": 0}]
    assert set(published(allow_loopback, 2)) == {"held", "fast"}
