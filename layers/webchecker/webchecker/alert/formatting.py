"""How an alert reads: the SNS Subject and attributes, and webhook posts for chat channels.

The alert JSON (DESIGN.md "Incidents and alerts") is the message; everything here is
derived from it, so every channel says the same thing. Alerts come from our own outbox,
but a webhook formatter receives whatever SNS delivers: every reader here is defensive
(missing or odd fields give a shorter text, never an exception).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any

MAX_SUBJECT = 100  # SNS's limit
SUMMARY = "incidents.summary"

_HEADLINES = {
    "incident.opened": "DOWN",
    "incident.resolved": "UP",
    "incident.reminder": "STILL DOWN",
    "certificate.expiring": "CERTIFICATE",
    "site.flapping": "FLAPPING",
    "site.stable": "STEADY",
    SUMMARY: "MANY",
}
# Slack attachment / Teams theme colours (paired with the words, never alone)
_COLOURS = {"incident.opened": "#d62728", "incident.resolved": "#2ca02c"}
_DEFAULT_COLOUR = "#ff7f0e"


def _text(alert: Mapping[str, Any], name: str) -> str | None:
    value = alert.get(name)
    return value if isinstance(value, str) and value else None


def _strings(alert: Mapping[str, Any], name: str) -> list[str]:
    value = alert.get(name)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _number(alert: Mapping[str, Any], name: str) -> float | None:
    value = alert.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def duration_text(seconds: float) -> str:
    """``45s``, ``12m``, ``3h 05m``, ``2d 04h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def reason(alert: Mapping[str, Any]) -> str:
    """Why it is down, short: ``status 503``, ``timeout``, ``dns: no such host``."""
    error = _text(alert, "error") or "failed"
    status = alert.get("status_code")
    if error == "status" and isinstance(status, int) and not isinstance(status, bool):
        return f"status {status}"
    detail = _text(alert, "error_detail")
    if detail and error not in ("status",):
        return f"{error}: {detail}"
    return error


def summary_line(alert: Mapping[str, Any]) -> str:
    """One line saying what happened (the subject's text before it is made SNS-safe)."""
    kind = _text(alert, "type") or "alert"
    site = _text(alert, "site_id") or "?"
    headline = _HEADLINES.get(kind, kind.upper())
    if kind == "incident.opened":
        return f"{headline} {site}: {reason(alert)}"
    if kind == "incident.resolved":
        seconds = _number(alert, "duration_seconds")
        after = f" after {duration_text(seconds)}" if seconds is not None else ""
        return f"{headline} {site}: back{after}"
    if kind == "incident.reminder":
        seconds = _number(alert, "open_seconds")
        since = f" for {duration_text(seconds)}" if seconds is not None else ""
        return f"{headline} {site}{since}: {reason(alert)}"
    if kind == "certificate.expiring":
        expires = _text(alert, "certificate_expires_at") or "soon"
        return f"{headline} {site}: expires {expires[:10]}"
    if kind == "site.flapping":
        count = alert.get("incidents_opened")
        return f"{headline} {site}: {count} incidents in a short time; notices held until steady"
    if kind == "site.stable":
        return f"{headline} {site}: no longer flapping, {_text(alert, 'state') or 'unknown'}"
    if kind == SUMMARY:
        ids = _strings(alert, "site_ids")
        of = _HEADLINES.get(_text(alert, "of") or "", "CHANGED")
        return f"{of} {len(ids)} sites at once: {', '.join(ids)}"
    return f"{headline} {site}"


def subject(alert: Mapping[str, Any]) -> str:
    """The SNS Subject: printable ASCII, one line, at most 100 characters."""
    text = unicodedata.normalize("NFKD", summary_line(alert))
    safe = "".join(
        c if " " <= c <= "~" else ("" if unicodedata.combining(c) else "?") for c in text
    )
    safe = " ".join(safe.split()) or "Webchecker alert"
    return safe if len(safe) <= MAX_SUBJECT else safe[: MAX_SUBJECT - 3] + "..."


def message_attributes(alert: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``type`` and ``site_id`` (String), ``tags`` (String.Array): for filter policies."""
    attributes = {"type": {"DataType": "String", "StringValue": _text(alert, "type") or "alert"}}
    site = _text(alert, "site_id")
    if site:
        attributes["site_id"] = {"DataType": "String", "StringValue": site}
    tags = _strings(alert, "tags")
    attributes["tags"] = {"DataType": "String.Array", "StringValue": json.dumps(tags)}
    return attributes


# -- chat webhooks ------------------------------------------------------------------------


def _details(alert: Mapping[str, Any]) -> list[tuple[str, str]]:
    fields = []
    for label, name in (
        ("Site", "url"),
        ("Opened", "opened_at"),
        ("Resolved", "resolved_at"),
        ("Certificate expires", "certificate_expires_at"),
    ):
        value = _text(alert, name)
        if value:
            fields.append((label, value))
    if alert.get("type") in ("incident.opened", "incident.reminder"):
        fields.append(("Reason", reason(alert)))
    return fields


def webhook_body(alert: Mapping[str, Any], flavour: str) -> dict[str, Any]:
    """A post for ``slack``, ``discord`` or ``teams`` incoming webhooks."""
    title = summary_line(alert)
    details = _details(alert)
    colour = _COLOURS.get(str(alert.get("type")), _DEFAULT_COLOUR)
    if flavour == "slack":
        lines = "\n".join(f"*{label}:* {value}" for label, value in details)
        return {"text": title, "attachments": [{"color": colour, "text": lines}]}
    if flavour == "discord":
        return {
            "content": title[:2000],
            "embeds": [
                {
                    "title": title[:256],
                    "color": int(colour[1:], 16),
                    "fields": [
                        {"name": label, "value": value[:1024], "inline": False}
                        for label, value in details
                    ],
                }
            ],
        }
    if flavour == "teams":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title,
            "themeColor": colour[1:],
            "title": title,
            "sections": [{"facts": [{"name": label, "value": value} for label, value in details]}],
        }
    raise ValueError(f"webhook flavour {flavour!r}: expected slack, discord or teams")


def parse_alert(text: str) -> dict[str, Any]:
    """An alert from an SNS Message; anything that is not a JSON object is a plain text note."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {"type": "note", "site_id": None, "error_detail": text[:500]}
    return value if isinstance(value, dict) else {"type": "note", "error_detail": str(value)[:500]}
