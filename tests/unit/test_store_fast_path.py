"""The writer's fast path agrees with ``CheckResult.from_json``: it never accepts what the
slow path rejects, and what it accepts becomes the same row (same check id, month, values)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webchecker.exceptions import InvalidMessage
from webchecker.results import ERROR_KINDS, CheckResult, format_timestamp
from webchecker.store import batch as store
from webchecker.store.batch import COLUMNS, BatchValidator, copy_line, fast_copy_row
from webchecker.store.msk import KafkaRecord

_TIMESTAMP_COLUMNS = {
    COLUMNS.index(c) for c in ("scheduled_at", "checked_at", "tls_cert_expires_at")
}
_FIELDS = (
    "schema", "check_id", "site_id", "url", "region", "scheduled_at", "checked_at",
    "response_time_ms", "status_code", "ok", "error", "error_detail", "regex_matched",
    "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "tls_cert_expires_at",
    "tags", "failure_threshold", "success_threshold", "alerts",
)  # fmt: skip
_MISSING = object()

moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
# any character but NUL (which from_json refuses) drawn directly: no filter to reject with
no_nul = st.characters(codec="utf-8", exclude_characters="\x00")
texts = st.text(no_nul, min_size=1, max_size=30)
site_ids = st.text(no_nul, min_size=1, max_size=63)
# no "@" either: userinfo goes through from_json
urls = st.text(st.characters(codec="utf-8", exclude_characters="\x00@"), min_size=1, max_size=30)
# what the regex [a-z0-9][a-z0-9._-]{0,31} matches, built without the slower regex strategy
_TAG_FIRST = "abcdefghijklmnopqrstuvwxyz0123456789"
tags = st.builds(str.__add__, st.sampled_from(_TAG_FIRST), st.text(_TAG_FIRST + "._-", max_size=31))
millis = st.none() | st.floats(min_value=0, max_value=8.64e7) | st.integers(0, 10**6)


@st.composite
def results(draw: st.DrawFn) -> CheckResult:
    ok = draw(st.booleans())
    return CheckResult(
        check_id=str(draw(st.uuids())),
        site_id=draw(site_ids),
        url=draw(urls),
        region=draw(st.none() | texts),
        scheduled_at=draw(moments),
        checked_at=draw(moments),
        response_time_ms=draw(millis),
        status_code=draw(st.none() | st.integers(100, 999)),
        ok=ok,
        error=None if ok else draw(st.sampled_from(sorted(ERROR_KINDS))),
        error_detail=draw(
            st.none() | st.text(no_nul, min_size=1, max_size=500)
        ),
        regex_matched=draw(st.none() | st.booleans()),
        dns_ms=draw(millis),
        connect_ms=draw(millis),
        tls_ms=draw(millis),
        ttfb_ms=draw(millis),
        tls_cert_expires_at=draw(st.none() | moments),
        tags=tuple(draw(st.lists(tags, max_size=10, unique=True))),
        failure_threshold=draw(st.integers(1, 10)),
        success_threshold=draw(st.integers(1, 10)),
        alerts=draw(st.booleans()),
    )  # fmt: skip


# values a producer might send by mistake, or in a form the slow path also accepts
ODD_VALUES: list[object] = [
    None,
    _MISSING,
    True,
    False,
    0,
    1,
    1.0,
    -1,
    -0.0,
    99,
    100,
    999,
    1000,
    2**53,
    2**53 + 1,
    10**400,
    1e308,
    float("nan"),
    float("inf"),
    "",
    "\x00",
    "a\tb\\c\nd\re",
    "a\x01b",
    "x\u2028y",
    "ü\\",
    "back\\slash",
    "\ud800",
    "x" * 500,
    "x" * 501,
    "dns",
    "gremlins",
    "ok",
    [],
    {},
    [1],
    {"a": 1},
    "2026-11-27T10:00:00Z",
    "2026-11-27T10:00:00.123Z",
    "2026-11-27T10:00:00.1234567Z",
    "2026-11-27T10:00:00+02:00",
    "2026-11-27T10:00:00",
    "2026-11-27",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59.999999Z",
    "2026-11-27 10:00:00Z",
    "2026-11-27T10:00:00.000+00:00",
    "2026-11-27t10:00:00z",
    "2026-11-27T23:59:60Z",
    "\u0662\u0660\u0662\u0666-11-27T10:00:00Z",
    "6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
    "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
    "6ba7b8109dad11d180b400c04fd430c8",
    "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "6ba7b810-9dad-11d1-80b4-00c04fd430c8\n",
    "6ba7b810-9dad-11d1-80b4-00c04fd430cg",
    ["prod"],
    ["prod", "Prod"],
    ["x" * 33],
    [f"t{i}" for i in range(11)],
    [1],
    10,
    11,
    2,
]
odd_values = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
)  # fmt: skip


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = draw(results()).to_message()
    body["schema"] = 1
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=4, unique=True)):
        value = draw(odd_values)
        if value is _MISSING:
            del body[name]
        else:
            body[name] = value
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")  # invalid UTF-8 is a case too


def row_values(line: str) -> list[object]:
    """A COPY line's fields, timestamps as instants (the fast path may pass the producer's
    UTC text through; PostgreSQL reads the same instant)."""
    fields: list[object] = list(line.rstrip("\n").split("\t"))
    assert len(fields) == len(COLUMNS)
    for index in _TIMESTAMP_COLUMNS:
        if fields[index] != "\\N":
            fields[index] = datetime.fromisoformat(str(fields[index]))
    return fields


def assert_agree(raw: bytes) -> bool:
    """Asserts that the two paths agree on ``raw``; True if the fast path took it."""
    fast = fast_copy_row(raw)
    try:
        slow = CheckResult.from_json(raw)
    except InvalidMessage:
        assert fast is None, f"fast path accepted what from_json rejects: {raw!r}"
        return False
    if fast is None:
        return False
    check_id, site_id, hour, ok, latency, line, _ = fast
    assert (check_id, site_id, ok, latency) == (
        slow.check_id,
        slow.site_id,
        slow.ok,
        slow.response_time_ms,
    )
    moment = slow.checked_at
    assert hour == f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}"
    assert line.endswith("\n")
    assert row_values(line) == row_values(copy_line(slow))
    return True


@settings(max_examples=500, deadline=None)
@given(results())
def test_every_message_the_checker_sends_takes_the_fast_path(result: CheckResult) -> None:
    assert assert_agree(result.to_json())


@settings(max_examples=1500, deadline=None)
@given(messages())
def test_fast_and_slow_paths_agree_on_mutated_messages(raw: bytes) -> None:
    assert_agree(raw)


@pytest.mark.parametrize("ok", [True, False])
def test_fast_and_slow_paths_agree_on_every_single_field_change(ok: bool) -> None:
    base = json.loads(_message(ok=ok, error=None if ok else "timeout", error_detail="slow"))
    taken = 0
    for name in _FIELDS:
        for value in ODD_VALUES:
            body = {key: item for key, item in base.items() if key != name}
            if value is not _MISSING:
                body[name] = value
            for ascii_only in (True, False):
                text = json.dumps(body, ensure_ascii=ascii_only)
                taken += assert_agree(text.encode("utf-8", "surrogatepass"))
    assert taken > 100  # the comparison is not vacuous


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fast_and_slow_paths_agree_on_any_bytes(raw: bytes) -> None:
    assert_agree(raw)


def _message(**changes: Any) -> bytes:
    moment = datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=UTC)
    body: dict[str, Any] = CheckResult(
        check_id=str(uuid.uuid4()), site_id="example", url="https://example.com/",
        region="eu-west-1", scheduled_at=moment, checked_at=moment, response_time_ms=12.5,
        status_code=200, ok=True, error=None, error_detail=None, regex_matched=True,
        tls_cert_expires_at=moment + timedelta(days=30),
    ).to_message()  # fmt: skip
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("changes", "fast"),
    [
        ({}, True),
        ({"check_id": "6BA7B810-9DAD-11D1-80B4-00C04FD430C8"}, True),  # normalised
        ({"checked_at": "2026-11-27T12:00:00.123+02:00"}, True),  # converted to UTC
        ({"response_time_ms": 12}, True),
        ({"url": "http://h/tab\there"}, True),  # escaped for COPY
        ({"site_id": "tab\there"}, True),  # escaped for COPY
        ({"site_id": "x" * 64}, False),  # longer than a site id: a reject
        ({"site_id": "x" * 10_000}, False),  # issue 9 item 5: a reject, not a failed COPY
        ({"response_time_ms": 1e308}, False),  # issue 9 item 4: a reject, not an overflow
        ({"url": "http://alice:secret@example.com/"}, False),  # from_json redacts it
        ({"check_id": "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}"}, False),  # from_json's call
        ({"checked_at": "2026-11-27T10:00:00.1234567Z"}, True),  # as from_json cuts it
        ({"schema": 1.0}, False),
        ({"url": "\ud800"}, False),
        ({"status_code": 42}, False),
    ],
)
def test_which_messages_take_the_fast_path(changes: dict[str, Any], fast: bool) -> None:
    assert assert_agree(_message(**changes)) is fast


def test_fast_and_slow_rows_make_the_same_batch() -> None:
    """A batch through ``copy_data`` (fast path) and through ``accept`` (from_json only)."""
    values = [
        _message(),
        b"{oops",
        _message(check_id="6BA7B810-9DAD-11D1-80B4-00C04FD430C8"),
        _message(check_id="6ba7b810-9dad-11d1-80b4-00c04fd430c8"),  # a duplicate of the above
        _message(checked_at="2026-10-31T23:30:00-01:00"),  # November in UTC
        _message(checked_at="2025-01-01T00:00:00Z"),
        _message(ok="yes"),
        None,
    ]
    records = [
        KafkaRecord(topic="t", partition=0, offset=offset, value=value)
        for offset, value in enumerate(values)
    ]
    fast, slow = BatchValidator(), BatchValidator()
    data = b"".join(fast.copy_data(records, per_chunk=3)).decode()
    accepted = [result for result in map(slow.accept, records) if result is not None]
    assert [row_values(line) for line in data.splitlines(keepends=True)] == [
        row_values(copy_line(result)) for result in accepted
    ]
    assert (fast.received, fast.valid, len(fast.rejects)) == (8, 5, 3)
    assert (slow.received, slow.valid, fast.months) == (8, 5, slow.months)
    assert {date.isoformat() for date in fast.months} == {"2026-11-01", "2025-01-01"}
    assert [r.reason for r in fast.rejects.values()] == [r.reason for r in slow.rejects.values()]


NUMBER_TEXTS = [
    "0", "-0", "-0.0", "00", "01", "1.", ".5", "+1", "1E2", "1e-7", "12.50", "1e400", "-1e400",
    "1.7976931348623157e308", "1.7976931348623159e308", "4.9e-324", "2.4703282292062327e-324",
    "0.1000000000000000055511151231257827021181583404541015625", "9007199254740993",
    "123456789012345678901234567890", "18446744073709551616", "NaN", "Infinity", "-Infinity",
    "200", "200.0", "2e2", "true", "null", '"12"',
]  # fmt: skip


@pytest.mark.parametrize("field", ["response_time_ms", "status_code", "dns_ms"])
@pytest.mark.parametrize("number", NUMBER_TEXTS)
def test_both_parsers_read_number_texts_alike(field: str, number: str) -> None:
    raw = _message(**{field: 12345.678}).replace(b"12345.678", number.encode())
    taken = assert_agree(raw)
    if number in {"200", "12.50", "1e-7"} and field != "status_code":
        assert taken


@settings(max_examples=500, deadline=None)
@given(
    st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
)
def test_both_parsers_read_any_json_number_alike(number: str) -> None:
    assert_agree(_message(response_time_ms=12345.678).replace(b"12345.678", number.encode()))


def test_the_timestamp_cache_stays_bounded_and_right() -> None:
    """scheduled_at and the certificate expiry repeat across a batch and are cached."""
    start = datetime(2026, 11, 27, tzinfo=UTC)
    cache = store._cached_timestamp
    for minute in range(5000):
        scheduled = start + timedelta(minutes=minute)
        for text in (scheduled.isoformat(), format_timestamp(scheduled)):  # +00:00 and Z
            assert assert_agree(_message(scheduled_at=text, tls_cert_expires_at=text))
            assert assert_agree(_message(scheduled_at=text, tls_cert_expires_at=text))
    info = cache.cache_info()
    assert info.hits > 5000
    assert info.maxsize is not None
    assert info.currsize <= info.maxsize


@pytest.mark.parametrize(
    ("changes", "fast"),
    [
        ({"tags": ["prod", "eu"], "failure_threshold": 3, "success_threshold": 1}, True),
        ({"alerts": False}, True),
        ({"tags": ["Prod"]}, False),
        ({"tags": "prod"}, False),
        ({"failure_threshold": 0}, False),
        ({"success_threshold": 11}, False),
        ({"success_threshold": 2.0}, False),
        ({"alerts": "no"}, False),
    ],
)
def test_site_settings_in_messages_are_validated_on_both_paths(
    changes: dict[str, Any], fast: bool
) -> None:
    raw = _message(**changes)
    assert assert_agree(raw) is fast
    if not fast:
        with pytest.raises(InvalidMessage, match=next(iter(changes))):
            CheckResult.from_json(raw)


def test_messages_without_site_settings_get_the_defaults() -> None:
    body = json.loads(_message())
    for name in ("tags", "failure_threshold", "success_threshold", "alerts"):
        del body[name]
    result = CheckResult.from_json(json.dumps(body).encode())

    assert (result.tags, result.failure_threshold, result.success_threshold, result.alerts) == (
        (),
        2,
        2,
        True,
    )
    assert assert_agree(json.dumps(body).encode())
