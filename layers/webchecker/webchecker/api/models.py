"""Pydantic models shared by the API's routers: problems, sites, checks, incidents, windows.

Responses are built from these models, so the OpenAPI document and what is sent come from
one source. Request bodies of sites are the exception (see ``site_input_schema``): they are
validated by the scheduler's own site model, ``webchecker.sites.Site``, so the API, the CLI
and Parameter Store accept exactly the same objects with the same messages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from webchecker.sites import (
    HEADER_NAME_PATTERN,
    MAX_INTERVAL,
    MAX_TIMEOUT,
    MAX_URL_LENGTH,
    METHODS,
    MIN_INTERVAL,
    SITE_ID_PATTERN,
    Site,
)

SITE_ID = f"^{SITE_ID_PATTERN.pattern}$"
TAG = "^[a-z0-9][a-z0-9._-]{0,31}$"
MAX_TEXT = 500


def _clean(value: str) -> str:
    """Text the database and Parameter Store can hold: no lone surrogates, no NUL."""
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ValueError("contains a lone surrogate (not valid Unicode)")
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_clean)]
SiteId = Annotated[str, Field(pattern=SITE_ID)]
Tag = Annotated[str, Field(pattern=TAG)]


class FieldError(BaseModel):
    """One invalid field: its name (dotted path) and what is wrong with it."""

    field: str
    message: str


class Problem(BaseModel):
    """An error (RFC 9457 problem details, application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(
        default=None, description="422 only: every invalid field"
    )


# -- sites ---------------------------------------------------------------------------------


class SiteObject(BaseModel):
    """A site with every default filled in (header values of a SecureString site are ***)."""

    # fields the site model gains later (tags, thresholds) pass through unchanged
    model_config = ConfigDict(extra="allow")

    id: str
    url: str
    interval: int
    timeout: float
    method: str
    headers: dict[str, str]
    body: str | None
    expected_status: list[int | str]
    regex: str | None
    follow_redirects: bool
    verify_tls: bool
    enabled: bool
    tags: list[str] = Field(default_factory=list)
    failure_threshold: int = 2
    success_threshold: int = 2
    alerts: bool = True


class SitePage(BaseModel):
    sites: list[SiteObject]
    next_cursor: str | None


def _any_case(word: str) -> str:
    return "".join(f"[{ch.upper()}{ch.lower()}]" for ch in word)


_STATUS_TEXT = r"^\s*[0-9]{3}(-[0-9]{3})?\s*$"
_STATUS_ITEM: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "string", "pattern": _STATUS_TEXT},
    ]
}
#: JSON Schema of each site field as ``Site.from_dict`` accepts it (for the document; the
#: site model itself is what validates). Fields the model does not have are left out.
_SITE_FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "pattern": SITE_ID},
    "url": {"type": "string", "minLength": 1, "maxLength": MAX_URL_LENGTH, "format": "uri"},
    "interval": {
        "type": "number",
        "minimum": MIN_INTERVAL,
        "maximum": MAX_INTERVAL,
        "multipleOf": 60,
        "description": "seconds between checks, a multiple of 60 (default 60)",
    },
    "timeout": {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": MAX_TIMEOUT,
        "description": "seconds, less than interval (default 10)",
    },
    "method": {"type": "string", "pattern": "^(" + "|".join(map(_any_case, METHODS)) + ")$"},
    "headers": {
        "type": "object",
        "propertyNames": {"pattern": f"^{HEADER_NAME_PATTERN.pattern}$"},
        "additionalProperties": {"type": "string", "pattern": "^[^\\r\\n\\u0000]*$"},
        "description": 'header values of a SecureString site are sent back as "***" to keep them',
    },
    "body": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    "expected_status": {
        "anyOf": [_STATUS_ITEM, {"type": "array", "items": _STATUS_ITEM, "minItems": 1}],
        "description": 'codes or ranges like "200-299" (default "200-399")',
    },
    "regex": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": "RE2 syntax, searched in the body",
    },
    "follow_redirects": {"type": "boolean"},
    "verify_tls": {"type": "boolean"},
    "enabled": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string", "pattern": TAG}, "maxItems": 10},
    "failure_threshold": {"type": "integer", "minimum": 1, "maximum": 10},
    "success_threshold": {"type": "integer", "minimum": 1, "maximum": 10},
    "alerts": {"type": "boolean"},
}


def site_fields() -> tuple[str, ...]:
    return tuple(Site.__dataclass_fields__)


def site_input_schema(*, patch: bool = False) -> dict[str, Any]:
    """The JSON Schema of a site body: POST/PUT (``url`` required) or PATCH (null resets)."""
    properties: dict[str, Any] = {}
    for name in site_fields():
        schema = dict(_SITE_FIELD_SCHEMAS.get(name, {}))
        if patch and name not in ("id",):
            schema = {"anyOf": [schema, {"type": "null"}], "description": "null: the default"}
        properties[name] = schema
    document: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if not patch:
        document["required"] = ["url"]
    return document


# -- results ---------------------------------------------------------------------------------


class CheckMessage(BaseModel):
    """One stored check, as the checker published it (schema 1)."""

    model_config = ConfigDict(extra="allow")

    schema_: int = Field(alias="schema", serialization_alias="schema")
    check_id: str
    site_id: str
    url: str
    region: str | None
    scheduled_at: str
    checked_at: str
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
    tls_cert_expires_at: str | None = None


class CheckPage(BaseModel):
    checks: list[CheckMessage]
    next_cursor: str | None


class Incident(BaseModel):
    """A period during which a site was down."""

    incident_id: str
    site_id: str
    url: str
    tags: list[str]
    state: Literal["open", "resolved"]
    opened_at: str
    resolved_at: str | None
    duration_seconds: float | None = Field(description="null while open")
    error: str | None
    error_detail: str | None
    status_code: int | None


class IncidentPage(BaseModel):
    incidents: list[Incident]
    next_cursor: str | None


class MaintenanceWindow(BaseModel):
    """A period in which checks are stored but no incident opens and nothing is sent."""

    id: str
    site_ids: list[str] | None = Field(description="null with tags null: every site")
    tags: list[str] | None
    starts_at: str
    ends_at: str
    reason: str
    created_at: str


class SiteStatus(BaseModel):
    site_id: str
    state: Literal["up", "down", "unknown", "disabled", "maintenance"]
    since: str | None
    flapping: bool
    last_check: CheckMessage | None
    incident: Incident | None
    maintenance: MaintenanceWindow | None = Field(description="the window covering it now")


class SiteReport(BaseModel):
    """One site's line of ``webchecker report --json`` (fields it gains pass through)."""

    model_config = ConfigDict(extra="allow")

    site_id: str
    checks: int
    failures: int
    availability: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p50_bucket_ms: list[float] | None = Field(
        default=None, description="the histogram bucket [low, high] ms holding p50"
    )
    p95_bucket_ms: list[float] | None = None
    p99_bucket_ms: list[float] | None = None
    last_checked_at: str | None
    last_status_code: int | None
    last_error: str | None
    last_error_at: str | None
    last_error_detail: str | None


class Report(BaseModel):
    sites: list[SiteReport]
