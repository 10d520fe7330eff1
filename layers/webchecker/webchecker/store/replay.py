"""Replaying the writer's failed batches from its S3 on-failure destination.

The writer's event source mapping retries a failing batch until the database is back or
its oldest record is older than the topic's retention (``MaximumRecordAgeInSeconds``);
only then does the batch go to the failure bucket. For an S3 destination Lambda writes one
JSON object per failed batch: metadata (``requestContext``, ``responseContext``, the
batch's topic, partition and offsets) and, under ``payload``, the whole invocation record,
that is the MSK event with every record's base64 key and value. ``replay`` feeds those
events through the writer's own code (idempotent: a record already stored is a duplicate),
so replaying twice, or replaying a batch that was partly stored, changes nothing more.

Objects that are not failed batches (or not parseable) are reported and left in place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from webchecker.exceptions import InvalidEvent, WebcheckerError
from webchecker.store.msk import EVENT_SOURCE

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

MAX_OBJECT_BYTES = 64 * 1024 * 1024  # a batch is at most 6 MB of payload; leave room


def parse_location(location: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` (or a bare bucket name) -> ``(bucket, prefix)``."""
    rest = location.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise WebcheckerError(f"{location!r}: expected s3://BUCKET[/PREFIX]")
    return bucket, prefix


def msk_event_of(document: Any) -> dict[str, Any]:
    """The MSK event inside a failure-destination object (or a bare MSK event)."""
    if isinstance(document, Mapping) and "payload" in document:
        payload = document["payload"]
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError as error:
                raise InvalidEvent(f"payload: not JSON ({error})") from None
        document = payload
    if not isinstance(document, Mapping):
        raise InvalidEvent("expected a JSON object with an MSK event under 'payload'")
    if document.get("eventSource") != EVENT_SOURCE or not isinstance(
        document.get("records"), Mapping
    ):
        raise InvalidEvent("payload: not an MSK event (eventSource aws:kafka with records)")
    return dict(document)


@dataclass
class ReplayReport:
    """What a replay did, per object and in total."""

    batches: int = 0
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    deleted: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # key -> reason

    def add(self, outcome: Mapping[str, int]) -> None:
        self.batches += 1
        for name in ("received", "inserted", "duplicates", "rejected"):
            setattr(self, name, getattr(self, name) + int(outcome.get(name, 0)))


def objects(client: S3Client, bucket: str, prefix: str) -> Iterator[str]:
    """Every key under ``prefix``, oldest name first (Lambda's keys start with a timestamp)."""
    paginator = client.get_paginator("list_objects_v2")
    keys: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    yield from sorted(keys)


def replay(
    client: S3Client,
    location: str,
    write: Callable[[Mapping[str, Any]], Mapping[str, int]],
    *,
    delete: bool = False,
) -> ReplayReport:
    """Writes every failed batch under ``location`` with ``write`` (the writer's handle).

    An object is deleted (with ``delete``) only after its batch was stored; a database
    failure (``StoreUnavailable``) stops the replay there, nothing lost: run it again.
    """
    bucket, prefix = parse_location(location)
    report = ReplayReport()
    for key in objects(client, bucket, prefix):
        head = client.head_object(Bucket=bucket, Key=key)
        if head["ContentLength"] > MAX_OBJECT_BYTES:
            report.skipped[key] = f"larger than {MAX_OBJECT_BYTES} bytes"
            continue
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            event = msk_event_of(json.loads(body))
        except (ValueError, InvalidEvent) as error:
            report.skipped[key] = str(error)[:200]
            continue
        outcome = write(event)
        report.add(outcome)
        logger.info("replayed %s", key, extra={"key": key, **outcome})
        if delete:
            client.delete_object(Bucket=bucket, Key=key)
            report.deleted += 1
    return report
