"""The watched sites: one validated, defaulted model, used by the scheduler, checker and CLI.

A site comes from Parameter Store as JSON: one object per parameter, or an array of
objects. Every field is checked once, at load, and an error names the field and the
problem; unknown keys are errors so that a typo never passes silently. An invalid entry
never stops the others: ``load_sites`` reports it (parameter name, index, reason) and
keeps going.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import re2

from webchecker.exceptions import SiteError

SITE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
HEADER_NAME_PATTERN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

DEFAULT_INTERVAL = 60
DEFAULT_TIMEOUT = 10.0
DEFAULT_METHOD = "GET"
DEFAULT_EXPECTED_STATUS = ((200, 399),)
MIN_INTERVAL, MAX_INTERVAL = 60, 86_400
MAX_TIMEOUT = 60.0
MAX_URL_LENGTH = 2048
MAX_TAGS = 10
DEFAULT_THRESHOLD = 2
MIN_THRESHOLD, MAX_THRESHOLD = 1, 10
# Bounds that keep one site's payload, messages and error texts small.
MAX_HEADERS = 64
MAX_HEADER_VALUE_LENGTH = 1 << 20
MAX_BODY_LENGTH = 1 << 20  # larger than any invoke payload (the scheduler says so)
MAX_REGEX_LENGTH = 2048
#: RE2's memory budget for one compiled pattern; a pattern needing more is invalid.
REGEX_MAX_MEM = 8 << 20

StatusRange = tuple[int, int]
_EMPTY_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class Site:
    """One watched site, validated and with every default filled in."""

    id: str
    url: str
    interval: int = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    method: str = DEFAULT_METHOD
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY_HEADERS, hash=False)
    body: str | None = None
    expected_status: tuple[StatusRange, ...] = DEFAULT_EXPECTED_STATUS
    regex: str | None = None
    follow_redirects: bool = True
    verify_tls: bool = True
    enabled: bool = True
    tags: tuple[str, ...] = ()
    failure_threshold: int = DEFAULT_THRESHOLD
    success_threshold: int = DEFAULT_THRESHOLD
    alerts: bool = True

    @classmethod
    def from_dict(cls, obj: object, *, default_id: str | None = None) -> Site:
        """Validates a site object (parsed JSON); raises ``SiteError`` naming the field."""
        if not isinstance(obj, Mapping):
            raise SiteError(f"a site must be a JSON object, got {_json_type(obj)}")
        unknown = sorted(_shown(key, 40) for key in obj if key not in _FIELDS)
        if unknown:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise SiteError(
                f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown[:5])}{more}"
                f" (allowed: {', '.join(_FIELDS)})"
            )
        if "url" not in obj:
            raise SiteError("is required", field="url")
        site_id = obj.get("id", default_id)
        if site_id is None:
            raise SiteError("is required", field="id")
        interval = _interval(obj.get("interval", DEFAULT_INTERVAL))
        regex = _optional_str(obj, "regex", MAX_REGEX_LENGTH)
        if regex is not None:
            _compile(regex)
        return cls(
            id=_site_id(site_id, defaulted="id" not in obj),
            url=_url(obj["url"]),
            interval=interval,
            timeout=_timeout(obj.get("timeout", DEFAULT_TIMEOUT), interval),
            method=_method(obj.get("method", DEFAULT_METHOD)),
            headers=_headers(obj.get("headers", {})),
            body=_optional_str(obj, "body", MAX_BODY_LENGTH),
            expected_status=_expected_status(obj.get("expected_status", "200-399")),
            regex=regex,
            follow_redirects=_bool(obj, "follow_redirects", True),
            verify_tls=_bool(obj, "verify_tls", True),
            enabled=_bool(obj, "enabled", True),
            tags=_tags(obj.get("tags", [])),
            failure_threshold=_threshold(obj, "failure_threshold"),
            success_threshold=_threshold(obj, "success_threshold"),
            alerts=_bool(obj, "alerts", True),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON site object with every default filled in (what the checker receives)."""
        return {
            "id": self.id,
            "url": self.url,
            "interval": self.interval,
            "timeout": self.timeout,
            "method": self.method,
            "headers": dict(self.headers),
            "body": self.body,
            "expected_status": [_format_range(r) for r in self.expected_status],
            "regex": self.regex,
            "follow_redirects": self.follow_redirects,
            "verify_tls": self.verify_tls,
            "enabled": self.enabled,
            "tags": list(self.tags),
            "failure_threshold": self.failure_threshold,
            "success_threshold": self.success_threshold,
            "alerts": self.alerts,
        }

    def expects(self, status_code: int) -> bool:
        """Whether ``status_code`` is one of the expected statuses."""
        return any(low <= status_code <= high for low, high in self.expected_status)

    @cached_property
    def pattern(self) -> Any:
        """The ``regex`` compiled by RE2 (once per site object): linear-time matching.

        An ``re2._Regexp``; its ``search(text)`` returns a match or None.
        """
        return None if self.regex is None else _re2_compile(self.regex)


_FIELDS = tuple(f for f in Site.__dataclass_fields__)


def redact_url(url: str) -> str:
    """``url`` with its userinfo (``user:password@``) shown as ``***@``: what is published,
    stored and displayed. The checker still sends the credentials (Basic auth)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    ends = [index for index in map(rest.find, "/?#") if index >= 0]
    end = min(ends, default=len(rest))
    authority = rest[:end]
    if "@" not in authority:
        return url
    return f"{scheme}://***@{authority.rpartition('@')[2]}{rest[end:]}"


@dataclass(frozen=True)
class InvalidSite:
    """An entry that was skipped: where it came from and why."""

    parameter: str
    index: int | None
    reason: str

    def __str__(self) -> str:
        where = self.parameter if self.index is None else f"{self.parameter}[{self.index}]"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class SiteCatalog:
    """The result of loading every site parameter: the valid sites and the skipped entries."""

    sites: tuple[Site, ...]
    invalid: tuple[InvalidSite, ...]

    def __iter__(self) -> Iterator[Site]:
        return iter(self.sites)

    def __len__(self) -> int:
        return len(self.sites)


def load_sites(parameters: Mapping[str, str]) -> SiteCatalog:
    """Parses parameter values (name -> raw JSON) into sites; invalid entries are reported.

    Parameters are read in name order, so when two entries share an id the first by
    parameter name is kept and the later one is invalid, whatever order the API returned.
    """
    sites: list[Site] = []
    invalid: list[InvalidSite] = []
    owner: dict[str, str] = {}
    for name in sorted(parameters):
        for index, entry in _entries(name, parameters[name]):
            if isinstance(entry, InvalidSite):
                invalid.append(entry)
                continue
            try:
                site = Site.from_dict(entry, default_id=None if index is not None else _last(name))
            except SiteError as error:
                invalid.append(InvalidSite(name, index, str(error)))
                continue
            if site.id in owner:
                invalid.append(
                    InvalidSite(
                        name, index, f"id: duplicate {site.id!r}, already used by {owner[site.id]}"
                    )
                )
                continue
            owner[site.id] = name if index is None else f"{name}[{index}]"
            sites.append(site)
    return SiteCatalog(tuple(sites), tuple(invalid))


def _entries(name: str, raw: str) -> Iterator[tuple[int | None, object]]:
    """Yields (index, site object or InvalidSite) for one parameter value."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as error:
        yield None, InvalidSite(name, None, f"not valid JSON: {error}")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, Mapping) and "id" not in item:
                yield index, InvalidSite(name, index, "id: is required inside an array")
            else:
                yield index, item
    elif isinstance(value, Mapping):
        yield None, value
    else:
        yield (
            None,
            InvalidSite(
                name, None, f"expected a site object or an array of them, got {_json_type(value)}"
            ),
        )


def _last(parameter_name: str) -> str:
    return parameter_name.rstrip("/").rsplit("/", 1)[-1]


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for kind, label in names.items():
        if isinstance(value, kind):
            return label
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _site_id(value: object, *, defaulted: bool) -> str:
    if not isinstance(value, str) or not SITE_ID_PATTERN.fullmatch(value):
        hint = " (taken from the parameter name; set 'id' explicitly)" if defaulted else ""
        raise SiteError(
            f"{_shown(value)} is not a valid id: use 1-63 characters a-z, 0-9, '.', '_', '-', "
            f"starting with a letter or digit{hint}",
            field="id",
        )
    return value


def _url(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise SiteError(f"must be a non-empty string, got {_json_type(value)}", field="url")
    if len(value) > MAX_URL_LENGTH:
        raise SiteError(f"is longer than {MAX_URL_LENGTH} characters", field="url")
    _unicode(value, "url")
    if any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in value):
        raise SiteError("must not contain whitespace or control characters", field="url")
    shown = _shown(redact_url(value))  # error texts are logged: no password in them
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError as error:
        raise SiteError(f"{shown} is not a valid URL: {error}", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise SiteError(f"{shown} must be an absolute http or https URL", field="url")
    if not parts.hostname:
        raise SiteError(f"{shown} has no host", field="url")
    if port == 0:
        raise SiteError(f"{shown} has port 0", field="url")
    return value


def _is_whole_number(value: object) -> TypeGuard[int | float]:
    """``60`` or ``60.0``: not a bool, not NaN or infinite, nothing after the point."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or (math.isfinite(value) and value.is_integer())


def _whole_number(value: object, field: str, low: int, high: int) -> int:
    """A finite whole number (``60`` or ``60.0``) within ``low..high``."""
    if not _is_whole_number(value):
        raise SiteError(f"must be a whole number, got {_shown(value)}", field=field)
    if not low <= value <= high:
        raise SiteError(f"must be between {low} and {high}, got {_shown(value)}", field=field)
    return int(value)


def _interval(value: object) -> int:
    if not _is_whole_number(value):
        raise SiteError(f"must be a whole number of seconds, got {_shown(value)}", field="interval")
    if not MIN_INTERVAL <= value <= MAX_INTERVAL or value % 60:
        raise SiteError(
            f"must be a multiple of 60 between {MIN_INTERVAL} and {MAX_INTERVAL}, "
            f"got {_shown(value)}",
            field="interval",
        )
    return int(value)


def _timeout(value: object, interval: int) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise SiteError(f"must be a number of seconds, got {_shown(value)}", field="timeout")
    # compared before float(): an integer too large for a float must not raise OverflowError
    if not 0 < value <= MAX_TIMEOUT:
        raise SiteError(
            f"must be > 0 and at most {MAX_TIMEOUT:g}, got {_shown(value)}", field="timeout"
        )
    seconds = float(value)
    if seconds >= interval:
        raise SiteError(
            f"must be less than interval ({interval}), got {_shown(value)}", field="timeout"
        )
    return seconds


def _method(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in METHODS:
        raise SiteError(f"must be one of {', '.join(METHODS)}, got {_shown(value)}", field="method")
    return value.upper()


def _headers(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise SiteError(f"must be an object of strings, got {_json_type(value)}", field="headers")
    if len(value) > MAX_HEADERS:
        raise SiteError(f"at most {MAX_HEADERS} headers, got {len(value)}", field="headers")
    headers: dict[str, str] = {}
    for name, header_value in value.items():
        if not isinstance(name, str) or not HEADER_NAME_PATTERN.fullmatch(name):
            raise SiteError(f"{_shown(name, 60)} is not a valid header name", field="headers")
        if not isinstance(header_value, str):
            raise SiteError(
                f"value of {name!r} must be a string, got {_json_type(header_value)}",
                field="headers",
            )
        if len(header_value) > MAX_HEADER_VALUE_LENGTH:
            raise SiteError(
                f"value of {name!r} is longer than {MAX_HEADER_VALUE_LENGTH} characters",
                field="headers",
            )
        _unicode(header_value, "headers", f"value of {name!r}")
        if any(ch in header_value for ch in "\r\n\x00"):
            raise SiteError(f"value of {name!r} contains a line break or NUL", field="headers")
        # RFC 9110 field values: visible characters, spaces and tabs; any other control
        # character would make every request of this site fail
        control = next((ch for ch in header_value if _is_header_control(ch)), None)
        if control is not None:
            raise SiteError(
                f"value of {name!r} contains the control character {control!r}",
                field="headers",
            )
        headers[name] = header_value
    return MappingProxyType(headers) if headers else _EMPTY_HEADERS


def _is_header_control(ch: str) -> bool:
    return (ch < " " and ch != "\t") or ch == "\x7f"


def _expected_status(value: object) -> tuple[StatusRange, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise SiteError("must not be empty", field="expected_status")
    if len(items) > 100:
        raise SiteError(f"at most 100 entries, got {len(items)}", field="expected_status")
    return tuple(_status_range(item) for item in items)


_STATUS_RANGE = re.compile(r"[0-9]{3}(-[0-9]{3})?")


def _status_range(item: object) -> StatusRange:
    where = "expected_status"
    if isinstance(item, int) and not isinstance(item, bool):
        low = high = item
    elif isinstance(item, str) and _STATUS_RANGE.fullmatch(item.strip()):
        first, _, last = item.strip().partition("-")
        low, high = int(first), int(last or first)
    else:
        raise SiteError(
            f'{_shown(item)} is not a status code or a range like "200-299"', field=where
        )
    if not 100 <= low <= high <= 599:
        raise SiteError(
            f"{_shown(item)}: codes must be 100-599 and a range must go from low to high",
            field=where,
        )
    return (low, high)


def _format_range(status_range: StatusRange) -> int | str:
    low, high = status_range
    return low if low == high else f"{low}-{high}"


def _optional_str(obj: Mapping[str, object], key: str, max_length: int) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SiteError(f"must be a string, got {_json_type(value)}", field=key)
    if len(value) > max_length:
        raise SiteError(f"is longer than {max_length} characters", field=key)
    return _unicode(value, key)


def _bool(obj: Mapping[str, object], key: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise SiteError(f"must be true or false, got {_shown(value)}", field=key)
    return value


def _tags(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise SiteError(f"must be a list of strings, got {_json_type(value)}", field="tags")
    if len(value) > MAX_TAGS:
        raise SiteError(f"at most {MAX_TAGS} tags, got {len(value)}", field="tags")
    tags: list[str] = []
    for tag in value:
        if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
            raise SiteError(
                f"{_shown(tag, 60)} is not a valid tag: use 1-32 characters a-z, 0-9, '.', "
                "'_', '-', starting with a letter or digit",
                field="tags",
            )
        if tag in tags:
            raise SiteError(f"{tag!r} is listed twice", field="tags")
        tags.append(tag)
    return tuple(tags)


def _threshold(obj: Mapping[str, object], key: str) -> int:
    return _whole_number(obj.get(key, DEFAULT_THRESHOLD), key, MIN_THRESHOLD, MAX_THRESHOLD)


def _unicode(value: str, field: str, what: str = "") -> str:
    """``value`` if it is valid Unicode: a lone surrogate (from a JSON escape such as
    ``"\\ud800"`` or a command-line argument that is not UTF-8) cannot be encoded and
    would fail later, far from here."""
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as error:
            where = f"{what} " if what else ""
            raise SiteError(
                f"{where}contains a lone surrogate at position {error.start} "
                "(not valid Unicode; was the input UTF-8?)",
                field=field,
            ) from None
    return value


def _shown(value: object, limit: int = 80) -> str:
    """``repr(value)``, shortened: error messages stay small whatever the input."""
    try:
        text = repr(value)
    except ValueError:  # an integer with more digits than Python converts to text
        return "a very large number"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _regex_options() -> Any:
    options = re2.Options()
    options.max_mem = REGEX_MAX_MEM
    options.never_capture = True  # only "found or not" is asked: the fastest RE2 engine
    options.log_errors = False  # errors are reported as SiteError, not on stderr
    return options


_REGEX_OPTIONS = _regex_options()


def _re2_compile(regex: str) -> Any:
    return re2.compile(regex, _REGEX_OPTIONS)


def _compile(regex: str) -> None:
    try:
        _re2_compile(regex)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        text = str(reason)
        text = text if len(text) <= 120 else text[:117] + "..."
        raise SiteError(
            f"{_shown(regex)} is not accepted by RE2: {text} "
            "(RE2 syntax: no backreferences or lookaround)",
            field="regex",
        ) from None
