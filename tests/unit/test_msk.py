"""The MSK event model: decoding, building, and the shapes the event source mapping uses."""

from __future__ import annotations

import base64
from dataclasses import FrozenInstanceError, fields
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.lambda_context import load_event
from webchecker.exceptions import InvalidEvent
from webchecker.store.msk import KafkaRecord, MskEvent


def raw_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "topic": "webchecker.checks",
        "partition": 2,
        "offset": 41,
        "timestamp": 1_795_000_000_000,
        "timestampType": "CREATE_TIME",
        "key": base64.b64encode(b"example").decode(),
        "value": base64.b64encode(b'{"schema": 1}').decode(),
        "headers": [{"source": [116, 101, 115, 116]}, {"empty": []}],
    }
    record.update(overrides)
    return {key: value for key, value in record.items() if value is not ...}


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:eu-west-1:123456789012:cluster/c/1",
        "bootstrapServers": "b-1:9098",
        "records": {"webchecker.checks-2": list(records)},
    }


def test_a_record_is_decoded() -> None:
    (record,) = MskEvent.from_dict(event(raw_record()))

    assert record.position == ("webchecker.checks", 2, 41)
    assert record.key == b"example"
    assert record.value == b'{"schema": 1}'
    assert record.headers == (("source", b"test"), ("empty", b""))
    assert (record.timestamp, record.timestamp_type) == (1_795_000_000_000, "CREATE_TIME")
    assert record.value_error is None


@pytest.mark.parametrize(
    ("overrides", "key", "value"),
    [
        ({"key": ...}, None, b'{"schema": 1}'),
        ({"key": None}, None, b'{"schema": 1}'),
        ({"value": ...}, b"example", None),
        ({"value": None}, b"example", None),
        ({"value": ""}, b"example", b""),
    ],
)
def test_absent_or_null_key_and_value(
    overrides: dict[str, Any], key: bytes | None, value: bytes | None
) -> None:
    (record,) = MskEvent.from_dict(event(raw_record(**overrides)))

    assert (record.key, record.value, record.value_error) == (key, value, None)


def test_a_value_that_is_not_base64_is_kept_as_received_with_the_reason() -> None:
    (record,) = MskEvent.from_dict(event(raw_record(value="not*base64!")))

    assert record.value == b"not*base64!"
    assert record.value_error is not None
    assert "base64" in record.value_error


@pytest.mark.parametrize(
    "broken",
    [
        {"eventSource": "aws:sqs", "records": {}},
        {"eventSource": "aws:kafka"},
        {"eventSource": "aws:kafka", "records": {"t-0": {"offset": 1}}},
        {"eventSource": "aws:kafka", "records": {"t-0": [{"topic": "t", "partition": 0}]}},
        {"eventSource": "aws:kafka", "records": {"t-0": [raw_record(topic="\ud800")]}},
        {"eventSource": "aws:kafka", "records": {"t-0": [raw_record(topic="t" * 250)]}},
        {"eventSource": "aws:kafka", "records": {"t-0": [raw_record(partition=2**31)]}},
        {"eventSource": "aws:kafka", "records": {"t-0": [raw_record(offset=-1)]}},
        {"eventSource": "aws:kafka", "records": {"t-0": [raw_record(offset=float("inf"))]}},
        {"eventSource": "aws:kafka", "records": {"t-0": ["not a record"]}},
    ],
)
def test_events_that_are_not_msk_batches_are_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        MskEvent.from_dict(broken)


@pytest.mark.parametrize("name", ["writer-msk", "writer-msk-poison"])
def test_the_event_fixtures_round_trip(name: str) -> None:
    fixture = load_event(name)
    parsed = MskEvent.from_dict(fixture)

    rebuilt = MskEvent.from_dict(parsed.to_dict())

    assert rebuilt == parsed
    assert parsed.event_source_arn == fixture["eventSourceArn"]
    assert len(parsed) == sum(len(group) for group in fixture["records"].values())


records_strategy = st.builds(
    KafkaRecord,
    topic=st.from_regex(r"[a-z][a-z.]{0,20}", fullmatch=True),
    partition=st.integers(0, 100),
    offset=st.integers(0, 2**62),
    timestamp=st.integers(0, 2**45),
    timestamp_type=st.sampled_from(["CREATE_TIME", "LOG_APPEND_TIME"]),
    key=st.none() | st.binary(max_size=20),
    value=st.none() | st.binary(max_size=200),
    headers=st.lists(st.tuples(st.text(max_size=10), st.binary(max_size=10)), max_size=3).map(
        tuple
    ),
)


@given(st.lists(records_strategy, max_size=10))
def test_building_then_decoding_gives_the_records_back(batch: list[KafkaRecord]) -> None:
    built = MskEvent(records=tuple(batch), bootstrap_servers="127.0.0.1:9092").to_dict()

    decoded = MskEvent.from_dict(built)

    assert sorted(decoded.records, key=lambda r: r.position) == sorted(
        batch, key=lambda r: r.position
    )
    for key, group in built["records"].items():
        assert all(key == f"{r['topic']}-{r['partition']}" for r in group)


@pytest.mark.parametrize("headers", [[], [{"source": [116]}]])
def test_from_dict_builds_the_same_record_as_the_constructor(headers: list[Any]) -> None:
    """``from_dict`` skips the frozen dataclass's ``__init__`` for speed: it must still set
    every field, and the record must compare and hash like a constructed one."""
    record = KafkaRecord.from_dict(raw_record(headers=headers))
    built = KafkaRecord(**{field.name: getattr(record, field.name) for field in fields(record)})
    assert set(vars(record)) == {field.name for field in fields(KafkaRecord)}
    assert record == built
    assert hash(record) == hash(built)
    with pytest.raises(FrozenInstanceError):
        record.offset = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"value": "\ud800 not base64"}, "value is not valid base64"),
        ({"timestamp": "abc"}, "timestamp is not a number"),
        ({"timestamp": float("nan")}, "timestamp is not a number"),
        ({"timestamp": float("inf")}, "timestamp is not a number"),
        ({"timestamp": [1]}, "timestamp is not a number"),
        ({"headers": ["x"]}, "headers must be a list"),
        ({"headers": [{"h": [256]}]}, "MSK record header h:"),
        ({"headers": [{"h": "\ud800"}]}, "MSK record header h:"),
        ({"headers": [{"h": 10**12}]}, "not a list of bytes"),  # not a terabyte of zeros
        ({"headers": 5}, "headers must be a list"),
    ],
)
def test_a_malformed_record_field_makes_that_record_a_reject_not_the_batch(
    overrides: dict[str, Any], problem: str
) -> None:
    """Issue 9 item 9: these raised out of the writer, failing the batch forever."""
    good = raw_record(offset=40)
    bad_record, good_record = MskEvent.from_dict(event(raw_record(**overrides), good))

    assert bad_record.value_error is not None
    assert problem in bad_record.value_error
    bad_record.value_error.encode()  # storable text
    assert bad_record.value is not None
    bad_record.value.decode("utf-8")
    assert good_record.value_error is None


def test_a_record_value_error_is_kept_short() -> None:
    (record,) = MskEvent.from_dict(event(raw_record(timestamp="x" * 1_000_000)))
    assert record.value_error is not None
    assert len(record.value_error) < 200
