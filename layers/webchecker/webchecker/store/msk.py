"""The MSK event that the Kafka event source mapping hands to a Lambda function.

``MskEvent.from_dict`` turns the raw event into typed records (key and value decoded from
base64, headers from lists of byte values); ``MskEvent.to_dict`` builds the same shape,
which is how the local poller reproduces the event source mapping::

    {"eventSource": "aws:kafka", "eventSourceArn": "...", "bootstrapServers": "...",
     "records": {"<topic>-<partition>": [{"topic": ..., "partition": ..., "offset": ...,
        "timestamp": ..., "timestampType": "CREATE_TIME", "key": "<base64>",
        "value": "<base64>", "headers": [{"name": [byte, ...]}]}]}}

A null key or value is absent from the record (a value of ``null`` is accepted too).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from webchecker.exceptions import InvalidEvent

EVENT_SOURCE = "aws:kafka"
LOCAL_EVENT_SOURCE_ARN = "arn:aws:kafka:local:000000000000:cluster/webchecker-local/local"


@dataclass(frozen=True, kw_only=True)
class KafkaRecord:
    """One Kafka record as MSK delivers it, with key, value and headers decoded."""

    topic: str
    partition: int
    offset: int
    timestamp: int = 0  # milliseconds since the epoch
    timestamp_type: str = "CREATE_TIME"
    key: bytes | None = None
    value: bytes | None = None
    #: why ``value`` could not be decoded from base64 (it then holds the text as received)
    value_error: str | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def position(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> KafkaRecord:
        try:
            topic, partition, offset = str(raw["topic"]), int(raw["partition"]), int(raw["offset"])
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidEvent(
                f"MSK record without a valid topic/partition/offset: {error}"
            ) from None
        value_error: str | None = None
        try:
            value = _b64decode(raw.get("value"))
        except ValueError as error:
            # kept as it came, so the reject shows what arrived
            value = str(raw.get("value")).encode()
            value_error = f"value is not valid base64: {error}"
        try:
            key = _b64decode(raw.get("key"))
        except ValueError:
            key = None  # the key is informational only; a bad one must not lose the value
        headers = raw.get("headers")
        # Built without the frozen dataclass's __init__ (one object.__setattr__ per field):
        # this runs once per record of every batch, and the fields are all set here.
        record = object.__new__(cls)
        record.__dict__.update(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp=int(raw.get("timestamp") or 0),
            timestamp_type=str(raw.get("timestampType") or "CREATE_TIME"),
            key=key,
            value=value,
            value_error=value_error,
            headers=tuple(_decode_headers(headers)) if headers else (),
        )
        return record

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "timestampType": self.timestamp_type,
        }
        if self.key is not None:
            record["key"] = base64.b64encode(self.key).decode("ascii")
        if self.value is not None:
            record["value"] = base64.b64encode(self.value).decode("ascii")
        record["headers"] = [{name: list(data)} for name, data in self.headers]
        return record


@dataclass(frozen=True, kw_only=True)
class MskEvent:
    """A batch of records, in the order MSK gives them (per partition, by offset)."""

    records: tuple[KafkaRecord, ...]
    event_source_arn: str = LOCAL_EVENT_SOURCE_ARN
    bootstrap_servers: str = ""
    event_source: str = field(default=EVENT_SOURCE)

    def __iter__(self) -> Iterator[KafkaRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @classmethod
    def from_dict(cls, event: Mapping[str, Any]) -> MskEvent:
        if event.get("eventSource") != EVENT_SOURCE:
            raise InvalidEvent(
                f"not an MSK event: eventSource is {event.get('eventSource')!r}, "
                f"expected {EVENT_SOURCE!r}"
            )
        groups = event.get("records")
        if not isinstance(groups, Mapping):
            raise InvalidEvent("MSK event without a 'records' object")
        records: list[KafkaRecord] = []
        for group in groups.values():
            if not isinstance(group, list):
                raise InvalidEvent("MSK event 'records' must map topic-partition to a list")
            records.extend(KafkaRecord.from_dict(raw) for raw in group)
        return cls(
            records=tuple(records),
            event_source_arn=str(event.get("eventSourceArn") or ""),
            bootstrap_servers=str(event.get("bootstrapServers") or ""),
        )

    def to_dict(self) -> dict[str, Any]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for record in self.records:
            groups.setdefault(f"{record.topic}-{record.partition}", []).append(record.to_dict())
        return {
            "eventSource": self.event_source,
            "eventSourceArn": self.event_source_arn,
            "bootstrapServers": self.bootstrap_servers,
            "records": groups,
        }


def _b64decode(text: object) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"expected a base64 string, got {type(text).__name__}")
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as error:
        raise ValueError(str(error)) from None


def _decode_headers(raw: Iterable[Any]) -> Iterator[tuple[str, bytes]]:
    for chunk in raw:
        if not isinstance(chunk, Mapping):
            raise InvalidEvent("MSK record headers must be a list of {name: [bytes]} objects")
        for name, data in chunk.items():
            try:
                yield str(name), bytes(data)
            except (TypeError, ValueError) as error:
                raise InvalidEvent(f"MSK record header {name!r}: {error}") from None
