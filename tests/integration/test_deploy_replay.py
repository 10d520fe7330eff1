"""`webchecker replay`: whole failed batches from the writer's S3 failure destination are
stored through the writer's own code, idempotently; nothing is deleted before it is stored.

S3 is moto (in-process); the database is the real PostgreSQL fixture. The objects have the
shape Lambda writes for a Kafka mapping's S3 on-failure destination: metadata, and the
whole invocation record (the MSK event) under ``payload``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.fixtures.aws import s3_with_bucket
from tests.messages import failed_message, message, msk_event, records
from webchecker.cli import main
from webchecker.exceptions import InvalidEvent, StoreUnavailable, WebcheckerError
from webchecker.local.embedded.network import free_port
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.replay import msk_event_of, parse_location, replay
from webchecker.store.writer import Writer, WriterSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "webchecker-dev-writerfailurebucket-abc"
PREFIX = "aws/lambda/"


def failure_document(event: dict[str, Any], *, payload_as_text: bool = True) -> dict[str, Any]:
    return {
        "requestContext": {
            "requestId": "f6d0ae29-0b71-4ab1-9b0e-4b0d1c7b2a33",
            "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:webchecker-dev-writer",
            "condition": "RecordAgeExceeded",
            "approximateInvokeCount": 4021,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "version": "1.0",
        "timestamp": "2026-12-02T10:00:00.000Z",
        "KafkaBatchInfo": {"batchSize": 3, "topic": "webchecker.checks", "partition": 0},
        "payload": json.dumps(event) if payload_as_text else event,
    }


@pytest.fixture
def s3(aws: None) -> S3Client:
    return s3_with_bucket(BUCKET)


@pytest.fixture
def writer(database_settings: DatabaseSettings, database_url: str) -> Iterator[Writer]:
    writer = Writer(WriterSettings.from_env({"DATABASE_URL": database_url}))
    yield writer
    writer.close()


def put(client: S3Client, key: str, body: Any) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    client.put_object(Bucket=BUCKET, Key=key, Body=data)


def stored_checks(settings: DatabaseSettings) -> int:
    with Database(settings) as database:
        return int(database.connection().run("SELECT count(*) FROM webchecker.checks")[0][0])


def keys(client: S3Client) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def two_batches(client: S3Client) -> None:
    first = records([message(), failed_message(), message()], first_offset=0)
    second = records([message(), b"not json"], partition=1, first_offset=7)
    put(client, f"{PREFIX}2026/12/02/batch-1", failure_document(msk_event(first)))
    put(
        client,
        f"{PREFIX}2026/12/02/batch-2",
        failure_document(msk_event(second), payload_as_text=False),
    )


def test_replay_stores_every_record_of_every_batch(
    s3: S3Client, writer: Writer, database_settings: DatabaseSettings
) -> None:
    two_batches(s3)
    report = replay(s3, f"s3://{BUCKET}/{PREFIX}", writer.handle)
    assert (report.batches, report.received, report.inserted, report.rejected) == (2, 5, 4, 1)
    assert report.skipped == {}
    assert stored_checks(database_settings) == 4
    assert len(keys(s3)) == 2  # kept without --delete


def test_replaying_again_stores_nothing_twice(
    s3: S3Client, writer: Writer, database_settings: DatabaseSettings
) -> None:
    two_batches(s3)
    replay(s3, f"s3://{BUCKET}", writer.handle)
    again = replay(s3, f"s3://{BUCKET}", writer.handle)
    assert (again.inserted, again.duplicates) == (0, 4)
    assert stored_checks(database_settings) == 4


def test_delete_removes_only_what_was_stored_and_keeps_what_is_not_a_batch(
    s3: S3Client, writer: Writer
) -> None:
    two_batches(s3)
    put(s3, f"{PREFIX}junk", b"\xff\xfe not json")
    put(s3, f"{PREFIX}other", {"payload": {"eventSource": "aws:sqs", "records": {}}})
    report = replay(s3, f"s3://{BUCKET}/{PREFIX}", writer.handle, delete=True)
    assert report.deleted == 2
    assert set(report.skipped) == {f"{PREFIX}junk", f"{PREFIX}other"}
    assert "not an MSK event" in report.skipped[f"{PREFIX}other"]
    assert sorted(keys(s3)) == [f"{PREFIX}junk", f"{PREFIX}other"]


def test_a_database_outage_stops_the_replay_and_deletes_nothing(s3: S3Client) -> None:
    two_batches(s3)
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    writer = Writer(WriterSettings.from_env({"DATABASE_URL": down, "DB_TIMEOUT": "2"}))
    with pytest.raises(StoreUnavailable):
        replay(s3, f"s3://{BUCKET}", writer.handle, delete=True)
    assert len(keys(s3)) == 2


def test_command_line_replays_and_deletes(
    s3: S3Client,
    database_url: str,
    database_settings: DatabaseSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    two_batches(s3)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["replay", f"s3://{BUCKET}/{PREFIX}", "--delete"]) == 0
    out = capsys.readouterr().out
    assert "2 batches: 5 records, 4 inserted, 0 duplicates, 1 rejected, 2 objects deleted" in out
    assert keys(s3) == []
    assert stored_checks(database_settings) == 4


def test_command_line_exits_1_when_objects_were_skipped(
    s3: S3Client,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put(s3, "junk", b"[]")
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["replay", BUCKET]) == 1
    assert "skipped junk:" in capsys.readouterr().out


class TestHostileObjects:
    @pytest.mark.parametrize(
        "document",
        [
            [],
            "text",
            {"payload": "{not json"},
            {"payload": 7},
            {"payload": {"eventSource": "aws:kafka", "records": []}},
            {"payload": {"records": {}}},
            {"eventSource": "aws:kafka"},
        ],
    )
    def test_anything_but_an_msk_event_is_invalid(self, document: Any) -> None:
        with pytest.raises(InvalidEvent):
            msk_event_of(document)

    def test_a_bare_msk_event_is_accepted(self) -> None:
        event = msk_event(records([message()]))
        assert msk_event_of(event) == event

    @pytest.mark.parametrize("location", ["", "s3://", "s3:///prefix"])
    def test_a_location_without_bucket_is_refused(self, location: str) -> None:
        with pytest.raises(WebcheckerError, match="s3://BUCKET"):
            parse_location(location)

    def test_location_parts(self) -> None:
        assert parse_location("s3://b/p/q") == ("b", "p/q")
        assert parse_location("b") == ("b", "")
