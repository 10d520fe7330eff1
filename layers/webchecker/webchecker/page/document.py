"""``status.json``: the page's numbers for other tools, with DESIGN.md's fields exactly."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson

from webchecker.page.model import WINDOWS, Incident, SiteStatus, StatusModel
from webchecker.results import format_optional_timestamp, format_timestamp

UPTIME_DIGITS = 3  # percent: 99.999 tells five nines apart
MINUTE_DIGITS = 1
LATENCY_DIGITS = 1


def status_document(model: StatusModel) -> dict[str, Any]:
    dates: dict[date, str] = {}  # every site has the same 90 dates: format them once
    return {
        "generated_at": format_timestamp(model.generated_at),
        "sites": [site_document(site, model.generated_at, dates) for site in model.sites],
    }


def site_document(
    site: SiteStatus, now: datetime, dates: dict[date, str] | None = None
) -> dict[str, Any]:
    dates = {} if dates is None else dates
    for day in site.days:
        if day.date not in dates:
            dates[day.date] = day.date.isoformat()
    return {
        "site_id": site.site_id,
        "url": site.url,
        "tags": list(site.tags),
        "state": site.state,
        "since": format_optional_timestamp(site.since),
        "uptime": {name: _round(site.uptime[name], UPTIME_DIGITS) for name, _ in WINDOWS},
        "days": [
            {
                "date": dates[day.date],
                "uptime": _round(day.uptime, UPTIME_DIGITS),
                "incident_minutes": round(day.incident_minutes, MINUTE_DIGITS),
            }
            for day in site.days
        ],
        "latency_ms": {
            "p50": _round(site.latency_p50_ms, LATENCY_DIGITS),
            "p95": _round(site.latency_p95_ms, LATENCY_DIGITS),
        },
        "incidents": [incident_document(incident, now) for incident in site.incidents],
        "certificate_expires_at": format_optional_timestamp(site.certificate_expires_at),
    }


def incident_document(incident: Incident, now: datetime) -> dict[str, Any]:
    return {
        "incident_id": incident.incident_id,
        "opened_at": format_timestamp(incident.opened_at),
        "resolved_at": format_optional_timestamp(incident.resolved_at),
        "duration_seconds": round(incident.duration(now).total_seconds()),
        "error": incident.error,
        "error_detail": incident.error_detail,
        "status_code": incident.status_code,
    }


def render_json(model: StatusModel) -> bytes:
    return orjson.dumps(status_document(model), option=orjson.OPT_INDENT_2)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
