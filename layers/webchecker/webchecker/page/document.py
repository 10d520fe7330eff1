"""``status.json``: the page's numbers for other tools, with DESIGN.md's fields exactly."""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import IO, Any

import orjson

from webchecker.page.model import WINDOWS, DayStatus, Incident, SiteStatus, StatusModel
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
    days = [
        {
            "date": dates[day.date],
            "uptime": _round(day.uptime, UPTIME_DIGITS),
            "incident_minutes": round(day.incident_minutes, MINUTE_DIGITS),
        }
        for day in site.days
    ]
    return _site_fields(site, now, days)


def _site_fields(site: SiteStatus, now: datetime, days: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "site_id": site.site_id,
        "url": site.url,
        "tags": list(site.tags),
        "state": site.state,
        "since": format_optional_timestamp(site.since),
        "uptime": {name: _round(site.uptime[name], UPTIME_DIGITS) for name, _ in WINDOWS},
        "days": days,
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
    """``status_document(model)`` as orjson writes it with ``OPT_INDENT_2``, byte for byte."""
    out = io.BytesIO()
    write_json(model, out)
    return out.getvalue()


def write_json(model: StatusModel, out: IO[bytes]) -> None:
    """``render_json(model)`` written site by site into ``out``: the whole document as dicts
    (90 per site for the days) was most of the render's peak memory. A site is dumped by
    orjson with an empty ``days`` list, indented to its depth, and its days spliced in from a
    template (their numbers formatted by orjson)."""
    head = orjson.dumps(
        {"generated_at": format_timestamp(model.generated_at), "sites": []}, option=_INDENT
    )
    if not model.sites:
        out.write(head)
        return
    out.write(head.removesuffix(b"[]\n}"))
    out.write(b"[\n    ")
    text = _Texts()
    for index, site in enumerate(model.sites):
        if index:
            out.write(b",\n    ")
        _write_site(out, site, model.generated_at, text)
    out.write(b"\n  ]\n}")


_INDENT = orjson.OPT_INDENT_2
_NO_DAYS = b'"days": []'  # never inside a string value: orjson escapes quotes there
# one day at its depth in the document: sites[i].days[j]
_DAY = (
    b'{\n          "date": "%b",\n          "uptime": %b,\n'
    b'          "incident_minutes": %b\n        }'
)
_SHARED_DAYS = 200_000  # days' texts kept (~25 MB at most)
_DAYS_OPEN, _DAYS_GAP, _DAYS_CLOSE = b"[\n        ", b",\n        ", b"\n      ]"


class _Texts:
    """Dates and numbers as orjson writes them, each formatted once per render."""

    def __init__(self) -> None:
        self.dates: dict[date, bytes] = {}
        self.numbers: dict[float, bytes] = {}
        # by id(): the model shares one DayStatus among the sites with the same counts on a
        # day without incidents, and keeps every day alive while the document is written
        self.days: dict[int, bytes] = {}

    def day(self, day: DayStatus) -> bytes:
        text = self.days.get(id(day))
        if text is None:
            text = _DAY % (
                self.date(day.date),
                self.number(day.uptime, UPTIME_DIGITS),
                self.number(day.incident_minutes, MINUTE_DIGITS),
            )
            if not day.incident_minutes and len(self.days) < _SHARED_DAYS:
                self.days[id(day)] = text
        return text

    def date(self, day: date) -> bytes:
        text = self.dates.get(day)
        if text is None:
            text = self.dates[day] = day.isoformat().encode()
        return text

    def number(self, value: float | None, digits: int) -> bytes:
        if value is None:
            return b"null"
        value = round(value, digits)
        if type(value) is not float or value == 0:  # 0.0 and -0.0 (or 0) are one key
            return orjson.dumps(value)
        text = self.numbers.get(value)
        if text is None:
            text = self.numbers[value] = orjson.dumps(value)
        return text


def _write_site(out: IO[bytes], site: SiteStatus, now: datetime, text: _Texts) -> None:
    document = orjson.dumps(_site_fields(site, now, []), option=_INDENT)
    before, marker, after = document.replace(b"\n", b"\n    ").partition(_NO_DAYS)
    if not marker:
        raise AssertionError("unreachable: the site's document has its days")
    out.write(before)
    if site.days:
        out.write(b'"days": ')
        out.write(_DAYS_OPEN)
        out.write(_DAYS_GAP.join([text.day(day) for day in site.days]))
        out.write(_DAYS_CLOSE)
    else:
        out.write(_NO_DAYS)
    out.write(after)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
