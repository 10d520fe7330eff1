"""Check-result messages and MSK events for the writer's tests, built by hand from DESIGN.md."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from webchecker.store.msk import KafkaRecord, MskEvent

TOPIC = "webchecker.checks"
BASE_TIME = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message(**overrides: Any) -> dict[str, Any]:
    """A valid schema-1 message with every field set; ``overrides`` replace fields."""
    checked_at = overrides.pop("checked_at", BASE_TIME + timedelta(seconds=1))
    fields: dict[str, Any] = {
        "schema": 1,
        "check_id": str(uuid.uuid4()),
        "site_id": "example",
        "url": "https://example.com/",
        "region": "eu-west-1",
        "scheduled_at": rfc3339(checked_at.replace(second=0, microsecond=0)),
        "checked_at": rfc3339(checked_at),
        "response_time_ms": 123.5,
        "status_code": 200,
        "ok": True,
        "error": None,
        "error_detail": None,
        "regex_matched": True,
        "dns_ms": 1.25,
        "connect_ms": 10.5,
        "tls_ms": 20.75,
        "ttfb_ms": 80.0,
        "tls_cert_expires_at": "2027-01-31T23:59:59.000Z",
    }
    fields.update(overrides)
    return fields


def failed_message(**overrides: Any) -> dict[str, Any]:
    fields = {
        "ok": False,
        "status_code": 503,
        "error": "status",
        "error_detail": "expected 200-399, got 503",
        "regex_matched": None,
    }
    fields.update(overrides)
    return message(**fields)


def encode(value: dict[str, Any] | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return json.dumps(value).encode()


def records(
    values: Iterable[dict[str, Any] | bytes | None],
    *,
    partition: int = 0,
    first_offset: int = 0,
    topic: str = TOPIC,
) -> list[KafkaRecord]:
    out = []
    for offset, value in enumerate(values, start=first_offset):
        site = value.get("site_id") if isinstance(value, dict) else None
        out.append(
            KafkaRecord(
                topic=topic,
                partition=partition,
                offset=offset,
                timestamp=1_795_000_000_000 + offset,
                key=str(site).encode() if site else None,
                value=encode(value),
                headers=(("source", b"test"),),
            )
        )
    return out


def msk_event(batch: Sequence[KafkaRecord]) -> dict[str, Any]:
    return MskEvent(records=tuple(batch), bootstrap_servers="127.0.0.1:9092").to_dict()
