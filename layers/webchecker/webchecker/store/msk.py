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
    #: why the record is not as MSK delivers it (a value that is not base64, then held as
    #: received; a timestamp that is not a number; malformed headers): it is a reject
    value_error: str | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def position(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> KafkaRecord:
        """One record of the event. Only a record without a usable position (topic,
        partition, offset: where its reject would be kept) raises ``InvalidEvent``; any
        other malformed field makes it a record with ``value_error`` set, a reject."""
        if not isinstance(raw, Mapping):
            raise InvalidEvent(f"MSK record must be an object, got {type(raw).__name__}")
        topic, partition, offset = _position(raw)
        problems: list[str] = []
        try:
            value = _b64decode(raw.get("value"))
        except ValueError as error:
            # kept as it came (a lone surrogate escaped), so the reject shows what arrived
            value = str(raw.get("value")).encode("utf-8", "backslashreplace")
            problems.append(f"value is not valid base64: {error}")
        try:
            key = _b64decode(raw.get("key"))
        except ValueError:
            key = None  # the key is informational only; a bad one must not lose the value
        timestamp = raw.get("timestamp") or 0
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            try:
                timestamp = int(timestamp)  # a numeric string or a whole float, as before
            except (TypeError, ValueError, OverflowError):
                problems.append(f"timestamp is not a number of milliseconds: {_short(timestamp)}")
                timestamp = 0
        headers: tuple[tuple[str, bytes], ...] = ()
        if raw.get("headers"):
            try:
                headers = tuple(_decode_headers(raw["headers"]))
            except InvalidEvent as error:
                problems.append(str(error))
        # Built without the frozen dataclass's __init__ (one object.__setattr__ per field):
        # this runs once per record of every batch, and the fields are all set here.
        record = object.__new__(cls)
        record.__dict__.update(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp=timestamp,
            timestamp_type=_short(raw.get("timestampType") or "CREATE_TIME"),
            key=key,
            value=value,
            value_error="; ".join(problems) or None,
            headers=headers,
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


_MAX_TOPIC = 249  # Kafka's limit on topic names
_MAX_PARTITION = 2**31 - 1  # the rejects table's int and bigint columns
_MAX_OFFSET = 2**63 - 1


def _position(raw: Mapping[str, Any]) -> tuple[str, int, int]:
    try:
        topic, partition, offset = raw["topic"], int(raw["partition"]), int(raw["offset"])
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise InvalidEvent(
            f"MSK record without a valid topic/partition/offset: {_short(error)}"
        ) from None
    if not isinstance(topic, str) or not 0 < len(topic) <= _MAX_TOPIC or not topic.isprintable():
        raise InvalidEvent(f"MSK record with an invalid topic {_short(topic)}")
    try:
        topic.encode()
    except UnicodeEncodeError:
        raise InvalidEvent(f"MSK record with an invalid topic {_short(topic)}") from None
    if not (0 <= partition <= _MAX_PARTITION and 0 <= offset <= _MAX_OFFSET):
        raise InvalidEvent(f"MSK record with partition {partition} / offset {offset} out of range")
    return topic, partition, offset


def _short(value: object, limit: int = 80) -> str:
    """``value`` as short, valid text (for reasons and field values made from input)."""
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit]
    try:
        text = value if isinstance(value, str) else repr(value)
    except ValueError:  # an integer with more digits than Python converts to text
        return "a very large number"
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    if not isinstance(raw, list):
        raise InvalidEvent("MSK record headers must be a list of {name: [bytes]} objects")
    for chunk in raw:
        if not isinstance(chunk, Mapping):
            raise InvalidEvent("MSK record headers must be a list of {name: [bytes]} objects")
        for name, data in chunk.items():
            if not isinstance(data, list):  # bytes(10**12) would allocate a terabyte
                raise InvalidEvent(f"MSK record header {_short(name)}: not a list of bytes")
            try:
                yield str(name), bytes(data)
            except (TypeError, ValueError, OverflowError) as error:
                raise InvalidEvent(f"MSK record header {_short(name)}: {error}") from None
