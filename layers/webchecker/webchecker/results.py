"""The check-result message: what the checker publishes and the writer stores (schema 1).

One UTF-8 JSON object per check. ``from_json`` is the writer's gate: anything it rejects
raises ``InvalidMessage`` with a reason a person can act on, and the record is kept in the
rejects table instead of failing the batch. Unknown fields are ignored, so that producers
may add fields before consumers know them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from webchecker.exceptions import InvalidMessage
from webchecker.sites import (
    DEFAULT_THRESHOLD,
    MAX_TAGS,
    MAX_THRESHOLD,
    MAX_URL_LENGTH,
    MIN_THRESHOLD,
    TAG_PATTERN,
    redact_url,
)

SCHEMA_VERSION = 1
MAX_ERROR_DETAIL = 500
#: Bounds that keep every record storable: text that is indexed (``site_id``) within
#: PostgreSQL's index row size, numbers far from float overflow in the hourly sums.
MAX_REGION = 64
MAX_SITE_ID = 63
MAX_MILLISECONDS = 86_400_000.0  # a day; a check lasts at most its timeout (60 s)
ERROR_KINDS = frozenset(
    {
        "dns",
        "connect",
        "tls",
        "timeout",
        "status",
        "regex",
        "too_large",
        "blocked",
        "invalid_response",
        "other",
    }
)
# Optional timing fields (milliseconds) added beyond the base schema.
PHASE_FIELDS = ("dns_ms", "connect_ms", "tls_ms", "ttfb_ms")

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """The outcome of one check of one site."""

    check_id: str
    site_id: str
    url: str
    region: str | None
    scheduled_at: datetime
    checked_at: datetime
    response_time_ms: float | None
    status_code: int | None
    ok: bool
    error: str | None
    error_detail: str | None
    regex_matched: bool | None
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    tls_cert_expires_at: datetime | None = None
    # Copied from the site, so that the writer can move the site's state without the
    # site list; absent in older messages, which get the site model's defaults.
    tags: tuple[str, ...] = ()
    failure_threshold: int = DEFAULT_THRESHOLD
    success_threshold: int = DEFAULT_THRESHOLD
    alerts: bool = True

    def to_message(self) -> dict[str, Any]:
        """The message as a JSON-ready dict (schema 1 plus the optional fields)."""
        return {
            "schema": SCHEMA_VERSION,
            "check_id": self.check_id,
            "site_id": self.site_id,
            "url": self.url,
            "region": self.region,
            "scheduled_at": format_timestamp(self.scheduled_at),
            "checked_at": format_timestamp(self.checked_at),
            "response_time_ms": self.response_time_ms,
            "status_code": self.status_code,
            "ok": self.ok,
            "error": self.error,
            "error_detail": self.error_detail,
            "regex_matched": self.regex_matched,
            "dns_ms": self.dns_ms,
            "connect_ms": self.connect_ms,
            "tls_ms": self.tls_ms,
            "ttfb_ms": self.ttfb_ms,
            "tls_cert_expires_at": (
                None
                if self.tls_cert_expires_at is None
                else format_timestamp(self.tls_cert_expires_at)
            ),
            "tags": list(self.tags),
            "failure_threshold": self.failure_threshold,
            "success_threshold": self.success_threshold,
            "alerts": self.alerts,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_message(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes | None) -> CheckResult:
        """Parses and validates one message value; raises ``InvalidMessage`` saying why."""
        if raw is None:
            raise InvalidMessage("record has no value (null)")
        try:
            message = json.loads(raw.decode("utf-8"))  # bytes alone would also accept UTF-16/32
        except UnicodeDecodeError as error:
            raise InvalidMessage(f"value is not UTF-8: {error}") from None
        except (ValueError, RecursionError) as error:
            raise InvalidMessage(f"value is not valid JSON: {error}") from None
        return cls.from_message(message)

    @classmethod
    def from_message(cls, message: object) -> CheckResult:
        """Validates a parsed message; raises ``InvalidMessage`` naming the field."""
        if not isinstance(message, Mapping):
            raise InvalidMessage(f"value must be a JSON object, got {type(message).__name__}")
        schema = message.get("schema")
        if schema != SCHEMA_VERSION or isinstance(schema, bool):
            raise InvalidMessage(
                f"schema: unknown version {_preview(schema)} "
                f"(this consumer understands {SCHEMA_VERSION})"
            )
        get = _Fields(message)
        ok = get.required("ok", _bool)
        error = get.optional("error", _error_kind)
        if ok and error is not None:
            raise InvalidMessage(f"error: {error!r} on a check that is ok")
        if not ok and error is None:
            raise InvalidMessage("error: missing on a check that failed")
        return cls(
            check_id=get.required("check_id", _uuid),
            site_id=get.required("site_id", _site_id),
            url=redact_url(get.required("url", _url)),
            region=get.optional("region", _region),
            scheduled_at=get.required("scheduled_at", _timestamp),
            checked_at=get.required("checked_at", _timestamp),
            response_time_ms=get.optional("response_time_ms", _milliseconds),
            status_code=get.optional("status_code", _status_code),
            ok=ok,
            error=error,
            error_detail=get.optional("error_detail", _detail),
            regex_matched=get.optional("regex_matched", _bool),
            dns_ms=get.optional("dns_ms", _milliseconds),
            connect_ms=get.optional("connect_ms", _milliseconds),
            tls_ms=get.optional("tls_ms", _milliseconds),
            ttfb_ms=get.optional("ttfb_ms", _milliseconds),
            tls_cert_expires_at=get.optional("tls_cert_expires_at", _timestamp),
            tags=get.optional("tags", _tags) or (),
            failure_threshold=get.optional("failure_threshold", _threshold) or DEFAULT_THRESHOLD,
            success_threshold=get.optional("success_threshold", _threshold) or DEFAULT_THRESHOLD,
            alerts=_default(get.optional("alerts", _bool), True),
        )


def lenient_threshold(value: object) -> int:
    """A threshold from a message: 1..10, else the default."""
    if type(value) is int and 1 <= value <= MAX_THRESHOLD:
        return value
    return DEFAULT_THRESHOLD


def lenient_tags(value: object) -> tuple[str, ...]:
    """Tags from a message: the valid ones (at most 10), in order, each once."""
    if not isinstance(value, list | tuple):
        return ()
    tags: list[str] = []
    for tag in value:
        if type(tag) is str and TAG_PATTERN.fullmatch(tag) and tag not in tags:
            tags.append(tag)
    return tuple(tags[:MAX_TAGS])


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_optional_timestamp(moment: datetime | None) -> str | None:
    """``format_timestamp``, with None (never happened) passed through."""
    return None if moment is None else format_timestamp(moment)


def parse_timestamp(text: str) -> datetime:
    """Parses an RFC 3339 timestamp with an offset (``Z`` or ``+hh:mm``) into UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{_preview(text)} has no UTC offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is a year before 1 in UTC
        raise ValueError(f"{_preview(text)} is out of range in UTC") from None


def truncate_detail(text: str) -> str:
    """An ``error_detail`` that fits the schema's 500 characters."""
    text = text[: MAX_ERROR_DETAIL * 4].replace("\x00", "")
    if not text.isascii():  # a lone surrogate would make the whole shard unpublishable
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_ERROR_DETAIL else text[: MAX_ERROR_DETAIL - 1] + "…"


class _Fields:
    """Typed access to message fields; every failure names the field."""

    def __init__(self, message: Mapping[str, object]) -> None:
        self._message = message

    def required(self, name: str, convert: Callable[[object], T]) -> T:
        if name not in self._message or self._message[name] is None:
            raise InvalidMessage(f"{name}: missing (required)")
        return self._convert(name, convert)

    def optional(self, name: str, convert: Callable[[object], T]) -> T | None:
        if self._message.get(name) is None:
            return None
        return self._convert(name, convert)

    def _convert(self, name: str, convert: Callable[[object], T]) -> T:
        value = self._message[name]
        try:
            return convert(value)
        except (TypeError, ValueError, OverflowError) as error:
            raise InvalidMessage(f"{name}: {error} (got {_preview(value)})") from None


def _preview(value: object) -> str:
    """A short JSON rendering of ``value`` for a reason: at most 80 characters, valid
    Unicode, whatever the value (huge strings, huge integers, non-finite numbers)."""
    if isinstance(value, str) and len(value) > 80:
        value = value[:80]  # never render a 10 MB string only to cut it
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:  # an integer with more digits than Python converts to text
        return "a very large number"
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:  # lone surrogates: the reason must still be storable
            text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("must be a string")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise ValueError("must not contain NUL characters")
    if not value:
        raise ValueError("must not be empty")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:  # a JSON escape such as "\ud800" gives a lone surrogate
            raise ValueError("must not contain lone surrogates (not valid Unicode)") from None
    return value


def _text_of_at_most(limit: int, note: str = "") -> Callable[[object], str]:
    """A converter for text (as ``_text``) of at most ``limit`` characters; ``note`` says
    where the limit comes from."""

    def convert(value: object) -> str:
        text = _text(value)
        if len(text) > limit:
            raise ValueError(f"must be at most {limit} characters{note}")
        return text

    return convert


# the site model's limit: within it, every index on site_id holds the row
_site_id = _text_of_at_most(MAX_SITE_ID, " (a site id)")
_url = _text_of_at_most(MAX_URL_LENGTH)
_region = _text_of_at_most(MAX_REGION)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("must be true or false")
    return value


def _uuid(value: object) -> str:
    return str(uuid.UUID(_text(value)))


def _timestamp(value: object) -> datetime:
    return parse_timestamp(_text(value))


def _milliseconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("must be a number")
    # compared as it is: an integer too large for a float must not raise OverflowError
    if not 0 <= value <= MAX_MILLISECONDS:  # NaN fails it too
        raise ValueError(f"must be a finite number from 0 to {MAX_MILLISECONDS:.0f}")
    return float(value)


def _status_code(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("must be a whole number")
    if not 100 <= value <= 999:  # HTTP/1.1 allows any three-digit code
        raise ValueError("must be a three-digit HTTP status")
    return value


def _error_kind(value: object) -> str:
    kind = _text(value)
    if kind not in ERROR_KINDS:
        raise ValueError(f"must be one of {', '.join(sorted(ERROR_KINDS))}")
    return kind


def _tags(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError("must be a list of tags")
    if len(value) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    for tag in value:
        if type(tag) is not str or not TAG_PATTERN.fullmatch(tag):
            raise ValueError("tags must be 1-32 characters a-z, 0-9, '.', '_', '-'")
    return tuple(value)


def _threshold(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("must be a whole number")
    if not MIN_THRESHOLD <= value <= MAX_THRESHOLD:
        raise ValueError(f"must be {MIN_THRESHOLD}..{MAX_THRESHOLD}")
    return value


def _default(value: T | None, default: T) -> T:
    return default if value is None else value


def _detail(value: object) -> str:
    text = _text(value)
    if len(text) > MAX_ERROR_DETAIL:
        raise ValueError(f"must be at most {MAX_ERROR_DETAIL} characters")
    return text
