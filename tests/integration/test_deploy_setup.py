"""The deploy's Setup custom resource against a real broker, a real PostgreSQL and a real
HTTP server on loopback standing in for CloudFormation's presigned reply URL.

What it must guarantee: the topic exists and the schema is migrated before the writer's
new code and mapping are deployed; every outcome, failures included, is answered (a
missing reply leaves the stack waiting); Delete touches nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from tests.fixtures.lambda_context import FakeLambdaContext, cold_start
from webchecker.exceptions import ConfigurationError, InvalidEvent
from webchecker.local.embedded.network import free_port
from webchecker.provision.custom_resource import MAX_REASON, Outcome, Request, serve
from webchecker.provision.setup import PHYSICAL_ID, Setup, SetupSettings
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import latest_version


class Replies:
    """A loopback HTTP server that records every PUT body, as S3's presigned URL would."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        replies = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers["Content-Length"])
                replies.bodies.append(json.loads(self.rfile.read(length)))
                replies.headers.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/reply?X-Amz-Signature=x"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replies() -> Iterator[Replies]:
    server = Replies()
    yield server
    server.close()


def event(url: str, request_type: str = "Create", **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/webchecker-dev/1",
        "RequestId": str(uuid.uuid4()),
        "ResourceType": "Custom::WebcheckerSetup",
        "LogicalResourceId": "Setup",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:...", "Topic": "t"},
        **extra,
    }


@pytest.fixture
def setup_env(kafka_bootstrap: str, database_url: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_AUTH": "none",
        "KAFKA_TOPIC": f"setup-{uuid.uuid4().hex[:10]}",
        "KAFKA_TOPIC_PARTITIONS": "3",
        "KAFKA_TOPIC_RETENTION_MS": "691200000",
        "DATABASE_URL": database_url,
        "SETUP_WAIT_SECONDS": "0",  # no waiting for what is unreachable, unless a test says so
    }


def topic_partitions(bootstrap: str, topic: str) -> int | None:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    found = metadata.topics.get(topic)
    return None if found is None else len(found.partitions)


def schema_version(database_url: str) -> int | None:
    with Database(DatabaseSettings.from_url(database_url)) as database:
        connection = database.connection()
        exists = connection.run("SELECT to_regclass('webchecker.schema_migrations') IS NOT NULL")
        if not exists[0][0]:
            return None
        return int(connection.run("SELECT max(version) FROM webchecker.schema_migrations")[0][0])


def test_create_makes_the_topic_migrates_and_replies_with_the_brokers(
    replies: Replies, setup_env: dict[str, str], database_url: str
) -> None:
    assert schema_version(database_url) is None
    setup = Setup(SetupSettings.from_env(setup_env), env=setup_env)
    body = serve(event(replies.url), setup, log_name="/aws/lambda/setup")
    assert replies.bodies == [body]
    assert replies.headers[0]["Content-Type"] == ""  # what a presigned PUT was signed with
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["PhysicalResourceId"] == PHYSICAL_ID
    assert body["Data"] == {
        "BootstrapServers": setup_env["KAFKA_BOOTSTRAP_SERVERS"],
        "Topic": setup_env["KAFKA_TOPIC"],
        "SchemaVersion": str(latest_version()),
    }
    assert body["LogicalResourceId"] == "Setup"
    assert topic_partitions(setup_env["KAFKA_BOOTSTRAP_SERVERS"], setup_env["KAFKA_TOPIC"]) == 3
    assert schema_version(database_url) == latest_version()


def test_update_after_create_is_idempotent(
    replies: Replies, setup_env: dict[str, str], database_url: str
) -> None:
    setup = Setup(SetupSettings.from_env(setup_env), env=setup_env)
    first = serve(event(replies.url), setup, log_name="setup")
    update = event(replies.url, "Update", PhysicalResourceId=PHYSICAL_ID)
    second = serve(update, setup, log_name="setup")
    assert [first["Status"], second["Status"]] == ["SUCCESS", "SUCCESS"]
    assert second["PhysicalResourceId"] == first["PhysicalResourceId"]  # no replacement
    assert schema_version(database_url) == latest_version()


def test_delete_touches_nothing(
    replies: Replies, setup_env: dict[str, str], database_url: str
) -> None:
    setup = Setup(SetupSettings.from_env(setup_env), env=setup_env)
    body = serve(
        event(replies.url, "Delete", PhysicalResourceId=PHYSICAL_ID), setup, log_name="setup"
    )
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == PHYSICAL_ID
    assert topic_partitions(setup_env["KAFKA_BOOTSTRAP_SERVERS"], setup_env["KAFKA_TOPIC"]) is None
    assert schema_version(database_url) is None


def test_an_unreachable_database_fails_the_deploy_with_a_reply_naming_it(
    replies: Replies, setup_env: dict[str, str]
) -> None:
    env = {
        **setup_env,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
        "SETUP_WAIT_SECONDS": "3",
    }
    body = serve(event(replies.url), Setup(SetupSettings.from_env(env), env=env), log_name="/aws/x")
    assert replies.bodies == [body]
    assert body["Status"] == "FAILED"
    assert "StoreUnavailable" in body["Reason"]
    assert re.search(r"gave up after [2-9] attempts", body["Reason"]), body["Reason"]
    assert "/aws/x" in body["Reason"]  # where to read the traceback
    # a failed Create gets an id whose rollback Delete undoes nothing
    assert body["PhysicalResourceId"] == "/aws/x-failed"


def test_handler_replies_failed_for_bad_settings_instead_of_failing_its_import(
    replies: Replies, monkeypatch: pytest.MonkeyPatch, lambda_context: FakeLambdaContext
) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "MSK_CLUSTER_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    app = cold_start("setup")  # must not raise: nothing could answer CloudFormation then
    body = app.lambda_handler(event(replies.url), lambda_context)
    assert body["Status"] == "FAILED"
    assert "MSK_CLUSTER_ARN" in body["Reason"]
    assert replies.bodies == [body]


def test_handler_creates_and_migrates_through_the_entry_point(
    replies: Replies,
    setup_env: dict[str, str],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: FakeLambdaContext,
) -> None:
    for name, value in setup_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    body = cold_start("setup").lambda_handler(event(replies.url), lambda_context)
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert schema_version(database_url) == latest_version()


def test_reason_is_bounded_and_unexpected_errors_are_answered(replies: Replies) -> None:
    def explode(_request: Request) -> Outcome:
        raise RuntimeError("x" * 100_000)

    body = serve(event(replies.url, "Update", PhysicalResourceId="kept"), explode, log_name="l")
    assert body["Status"] == "FAILED"
    assert len(body["Reason"]) == MAX_REASON
    assert body["PhysicalResourceId"] == "kept"  # a failed Update keeps its resource


class TestHostileRequests:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"RequestType": "Explode"}, "RequestType"),
            ({"RequestType": None}, "RequestType"),
            ({"ResponseURL": ""}, "ResponseURL"),
            ({"ResponseURL": 7}, "ResponseURL"),
            ({"StackId": None}, "StackId"),
            ({"LogicalResourceId": ["Setup"]}, "LogicalResourceId"),
            ({"ResourceProperties": "Topic=x"}, "ResourceProperties"),
        ],
    )
    def test_malformed_requests_name_the_field(self, change: dict[str, Any], field: str) -> None:
        with pytest.raises(InvalidEvent, match=field):
            Request.from_event({**event("https://example.invalid/"), **change})

    def test_a_non_http_reply_url_is_refused(self, replies: Replies) -> None:
        with pytest.raises(InvalidEvent, match="ResponseURL"):
            serve(
                event("file:///etc/passwd"),
                lambda r: Outcome(physical_resource_id="x"),
                log_name="l",
            )


def test_settings_need_brokers_or_a_cluster() -> None:
    with pytest.raises(ConfigurationError, match="MSK_CLUSTER_ARN"):
        SetupSettings.from_env({})
    assert SetupSettings.from_env({"MSK_CLUSTER_ARN": "arn:x"}).cluster_arn == "arn:x"


class LateForwarder:
    """Listens on a loopback port only once ``open()`` is called, then forwards every
    connection to the real PostgreSQL: a database proxy whose target registers late."""

    def __init__(self, target: DatabaseSettings) -> None:
        self.port = free_port()
        self.target = target
        self._stop = threading.Event()
        self._open = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def open(self) -> None:
        self._open.set()

    def _connect_target(self) -> socket.socket:
        if self.target.unix_socket_dir:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(f"{self.target.unix_socket_dir}/.s.PGSQL.{self.target.port}")
            return upstream
        return socket.create_connection((self.target.host or "127.0.0.1", self.target.port))

    def _run(self) -> None:
        self._open.wait()
        if self._stop.is_set():
            return
        with socket.create_server(("127.0.0.1", self.port)) as server:
            server.settimeout(0.2)
            while not self._stop.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = self._connect_target()
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # each socket is the source of exactly one pipe: that pipe closes it
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            source.close()

    def close(self) -> None:
        self._stop.set()
        self._open.set()
        self._thread.join(timeout=5)


def test_setup_waits_for_a_database_that_answers_late(
    replies: Replies, setup_env: dict[str, str], database_url: str
) -> None:
    target = DatabaseSettings.from_url(database_url)
    forwarder = LateForwarder(target)
    try:
        late_url = f"postgresql://{target.user}@127.0.0.1:{forwarder.port}/{target.database}"
        env = {**setup_env, "DATABASE_URL": late_url, "SETUP_WAIT_SECONDS": "60"}
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            # The database registers while setup waits after its first failed attempt (not
            # after a fixed delay, which a slow topic step could outlast or fall short of).
            waits.append(seconds)
            forwarder.open()
            time.sleep(seconds)

        setup = Setup(SetupSettings.from_env(env), env=env, sleep=sleep)
        body = serve(event(replies.url), setup, log_name="setup")
    finally:
        forwarder.close()
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert waits[:1] == [2.0]  # it failed at least once, then waited and tried again
    assert schema_version(database_url) == latest_version()
