"""The check-result message: round trip, and a clear reason for every invalid message."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webchecker.exceptions import InvalidMessage
from webchecker.results import CheckResult, format_timestamp, truncate_detail

CHECKED = datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=UTC)


def make_result(**changes: Any) -> CheckResult:
    fields: dict[str, Any] = {
        "check_id": str(uuid.uuid4()),
        "site_id": "example",
        "url": "https://example.com/",
        "region": "eu-west-1",
        "scheduled_at": CHECKED.replace(second=0, microsecond=0),
        "checked_at": CHECKED,
        "response_time_ms": 12.5,
        "status_code": 200,
        "ok": True,
        "error": None,
        "error_detail": None,
        "regex_matched": True,
        "dns_ms": 1.0,
        "connect_ms": 2.0,
        "tls_ms": 3.0,
        "ttfb_ms": 4.0,
        "tls_cert_expires_at": CHECKED + timedelta(days=30),
    }
    fields.update(changes)
    return CheckResult(**fields)


def message(**changes: Any) -> bytes:
    body = make_result().to_message()
    body.update(changes)
    for key in [k for k, v in changes.items() if v is _DROP]:
        del body[key]
    return json.dumps(body).encode()


_DROP = object()


def test_round_trip_keeps_every_field() -> None:
    result = make_result()
    assert CheckResult.from_json(result.to_json()) == result


def test_message_has_the_schema_fields() -> None:
    body = json.loads(make_result().to_json())
    assert body["schema"] == 1
    assert body["checked_at"] == "2026-11-27T10:00:00.123Z"
    assert body["scheduled_at"] == "2026-11-27T10:00:00.000Z"
    assert set(body) >= {
        "check_id",
        "site_id",
        "url",
        "region",
        "scheduled_at",
        "checked_at",
        "response_time_ms",
        "status_code",
        "ok",
        "error",
        "error_detail",
        "regex_matched",
    }


def test_failed_check_round_trips_with_nulls() -> None:
    result = make_result(
        ok=False,
        error="dns",
        error_detail="name not found",
        response_time_ms=None,
        status_code=None,
        regex_matched=None,
        region=None,
        dns_ms=None,
        connect_ms=None,
        tls_ms=None,
        ttfb_ms=None,
        tls_cert_expires_at=None,
    )
    assert CheckResult.from_json(result.to_json()) == result


def test_unknown_fields_are_ignored_and_offsets_normalised_to_utc() -> None:
    raw = message(future_field={"x": 1}, checked_at="2026-11-27T12:00:00.123+02:00")
    assert CheckResult.from_json(raw).checked_at == CHECKED


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "no value"),
        (b"\xff\xfe", "not UTF-8"),
        (b"{oops", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (message(schema=2), "schema: unknown version 2"),
        (message(schema=_DROP), "schema: unknown version null"),
        (message(check_id="nope"), "check_id:"),
        (message(check_id=_DROP), "check_id: missing"),
        (message(site_id=""), "site_id: must not be empty"),
        (message(site_id="a\u0000b"), "site_id: must not contain NUL"),
        (message(url=7), "url: must be a string"),
        (message(checked_at="yesterday"), "checked_at:"),
        (message(checked_at="2026-11-27T10:00:00"), "checked_at:"),
        (message(response_time_ms="12"), "response_time_ms: must be a number"),
        (message(response_time_ms=-1), "response_time_ms: must be a finite number"),
        (message(status_code=20.5), "status_code: must be a whole number"),
        (message(status_code=42), "status_code: must be a three-digit"),
        (message(ok="true"), "ok: must be true or false"),
        (message(ok=False), "error: missing on a check that failed"),
        (message(error="dns"), "error: 'dns' on a check that is ok"),
        (message(ok=False, error="gremlins"), "error: must be one of"),
        (message(ok=False, error="other", error_detail="x" * 501), "error_detail: must be at most"),
        (message(regex_matched=1), "regex_matched: must be true or false"),
    ],
)
def test_invalid_messages_say_why(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        CheckResult.from_json(raw)
    assert reason in str(caught.value)


def test_nan_is_rejected() -> None:
    raw = make_result().to_json().replace(b'"response_time_ms":12.5', b'"response_time_ms":NaN')
    with pytest.raises(InvalidMessage, match="finite"):
        CheckResult.from_json(raw)


def test_format_timestamp_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 1, 1))
    assert format_timestamp(datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-01-01T00:00:00.000Z"
    )


def test_truncate_detail_fits_the_schema() -> None:
    assert len(truncate_detail("x" * 2000)) == 500
    assert truncate_detail("a\x00b") == "ab"


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200)
    | st.dictionaries(st.text(max_size=12), st.text(max_size=12)).map(
        lambda d: json.dumps({**json.loads(message()), **d}).encode()
    )
)
def test_any_bytes_give_a_result_or_invalid_message(raw: bytes) -> None:
    try:
        result = CheckResult.from_json(raw)
    except InvalidMessage as error:
        assert str(error)
    else:
        assert CheckResult.from_json(result.to_json()) == result


def test_truncate_detail_never_keeps_a_lone_surrogate() -> None:
    # an error text made from hostile input must not make the message unpublishable
    detail = truncate_detail("bad \ud800 byte " + "x" * 1000)
    detail.encode()
    assert detail.startswith("bad \\ud800 byte")
    assert len(detail) == 500
