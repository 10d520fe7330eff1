"""``badges/<site_id>.svg``: a small "site | up 99.98%" badge, self-contained SVG."""

from __future__ import annotations

import re
from html import escape

from webchecker.page.model import SiteStatus

BADGE_WINDOW = "30d"
BADGE_FOLDER = "badges/"
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_CHAR_WIDTH = 6.6  # px per character of 11 px sans-serif, near enough for a badge
_COLOURS = {"up": "#1a7f37", "down": "#cf222e", "maintenance": "#0969da", "unknown": "#6e7781"}


def badge_name(site_id: str) -> str | None:
    """The badge's file name, or None when the id is not safe as one (it is never rewritten,
    so that two sites cannot share a badge)."""
    return f"{BADGE_FOLDER}{site_id}.svg" if _SAFE_NAME.fullmatch(site_id) else None


def badge_text(site: SiteStatus) -> str:
    uptime = site.uptime[BADGE_WINDOW]
    return site.state if uptime is None else f"{site.state} {_percent(uptime)}"


def render_badge(site: SiteStatus) -> bytes:
    label, value = site.site_id, badge_text(site)
    left = round(len(label) * _CHAR_WIDTH + 12)
    right = round(len(value) * _CHAR_WIDTH + 12)
    width = left + right
    colour = _COLOURS.get(site.state, _COLOURS["unknown"])
    text = f"{label}: {value}"
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img"'
        f' aria-label="{escape(text)}"><title>{escape(text)}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="6" y="14">{escape(label)}</text>'
        f'<text x="{left + 6}" y="14">{escape(value)}</text></g></svg>'
    )
    return svg.encode()


def _percent(value: float) -> str:
    """99.98% style: two decimals, never rounding a failure up to 100%."""
    if value >= 100.0:
        return "100%"
    return f"{min(value, 99.99):.2f}%"
