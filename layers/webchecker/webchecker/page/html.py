"""``index.html``: one self-contained page (inline CSS and SVG; no script, font or image).

Every colour comes with text (a state word, a legend, ``<title>`` tooltips and an
``aria-label`` on each chart); headings and tables carry the structure for screen readers;
``prefers-color-scheme`` gives dark mode and a single column serves phones. A Content
Security Policy in the page forbids loading anything at all, so a stray reference could
not leak a visitor's address. Every value from the database is escaped (``_e``).

The 90-day bars stay small: days without incidents are drawn as runs sharing one tooltip
("3 Nov - 20 Nov: no incidents"), days with incidents each get their own.
"""

from __future__ import annotations

import html
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import IO

from webchecker.page.model import (
    DAYS,
    WINDOWS,
    DayStatus,
    Incident,
    MaintenanceWindow,
    SiteStatus,
    StatusModel,
)

CERT_WARNING_DAYS = 14
DETAIL_CHARS = 200
# C0 and C1 control characters (but tab and line breaks) are parse errors in HTML
_CONTROL = {
    code: "\ufffd"
    for code in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))
}
_STATE_TEXT = {
    "up": ("\u2713", "Up"),
    "down": ("\u2715", "Down"),
    "maintenance": ("\u2692", "Maintenance"),
    "unknown": ("?", "No data yet"),
}
# (class, upper bound of incident minutes that day, legend text)
_DAY_CLASSES = (
    ("d0", 0.0, "No incidents"),
    ("d1", 30.0, "Incidents under 30 min"),
    ("d2", 240.0, "Incidents of 30 min to 4 h"),
    ("d3", float("inf"), "Incidents over 4 h"),
)
_BAR_W, _BAR_GAP, _BAR_H = 4, 2, 30
_CHART_STEP, _CHART_H = 10, 48
_CHART_W = 23 * _CHART_STEP

# The overall banner keeps the same dark colours in both schemes: white text on them stays
# above WCAG's 4.5:1.
CSS = """
:root{--bg:#f6f8fa;--fg:#1f2328;--muted:#59636e;--card:#fff;--line:#d1d9e0;--up:#1a7f37;
--d1:#bf8700;--d2:#e16f24;--down:#cf222e;--none:#d1d9e0;--maint:#0969da;--p50:#0969da;
--p95:#8250df}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--card:#151b23;--line:#3d444d;--up:#3fb950;--d1:#d29922;--d2:#db6d28;--down:#f85149;
--none:#3d444d;--maint:#4493f8;--p50:#4493f8;--p95:#ab7df8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",sans-serif}
header,main,footer{max-width:64rem;margin:0 auto;padding:0 1rem}
header{padding-top:1.5rem}
h1{font-size:1.6rem;margin:0 0 .75rem}
h2{font-size:1.15rem;margin:2rem 0 .75rem}
h3{font-size:1rem;margin:0;overflow-wrap:anywhere}
.overall{display:flex;flex-wrap:wrap;align-items:center;gap:.2rem .6rem;margin:0;
padding:1rem 1.25rem;border-radius:.5rem;color:#fff;font-size:1.2rem;font-weight:600}
.overall.up{background:#1a7f37}.overall.partial{background:#bc4c00}
.overall.major{background:#cf222e}.overall.none{background:#59636e}
.overall .down-list{font-weight:400}
.meta,.muted{color:var(--muted);font-size:.85rem}
.meta{margin:.5rem 0 0}
.site{background:var(--card);border:1px solid var(--line);border-radius:.5rem;
padding:1rem 1.25rem;margin:0 0 .75rem}
.head{display:flex;flex-wrap:wrap;align-items:baseline;gap:.25rem .75rem}
.state{font-weight:600;white-space:nowrap}
.state.up{color:var(--up)}.state.down{color:var(--down)}.state.maintenance{color:var(--maint)}
.state.unknown{color:var(--muted)}
.url{margin:.1rem 0 .6rem;overflow-wrap:anywhere}
.bars{display:block;width:100%;height:30px}
.bars path{fill:none;stroke-width:30;stroke-dasharray:4 2}
.d0{stroke:var(--up)}.d1{stroke:var(--d1)}.d2{stroke:var(--d2)}.d3{stroke:var(--down)}
.dn{stroke:var(--none)}
.axis{display:flex;justify-content:space-between;color:var(--muted);font-size:.75rem}
.figures{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1rem;
margin-top:.75rem}
.uptime{display:grid;grid-template-columns:repeat(4,1fr);gap:.5rem;margin:0}
.uptime div{text-align:center}
.uptime dt{color:var(--muted);font-size:.75rem}.uptime dd{margin:0;font-weight:600}
.chart{margin:0}
.chart svg{display:block;width:100%;height:48px;border-bottom:1px solid var(--line)}
.p50{stroke:var(--p50)}.p95{stroke:var(--p95)}
.chart path{fill:none;stroke-width:1.5;stroke-linejoin:round;stroke-linecap:round;
vector-effect:non-scaling-stroke}
.chart figcaption{color:var(--muted);font-size:.75rem}
.key{display:inline-block;width:.7rem;height:.7rem;border-radius:2px;margin:0 .2rem 0 .5rem;
vertical-align:-.05rem}
.key.p50{background:var(--p50)}.key.p95{background:var(--p95)}
.key.d0{background:var(--up)}.key.d1{background:var(--d1)}.key.d2{background:var(--d2)}
.key.d3{background:var(--down)}.key.dn{background:var(--none)}
.url .warn{color:var(--down);font-weight:600}
.flapping{color:var(--d2);font-size:.85rem;font-weight:600}
.site.down{border-left:4px solid var(--down)}.site.maintenance{border-left:4px solid var(--maint)}
table{width:100%;border-collapse:collapse;background:var(--card);font-size:.9rem}
caption{text-align:left;color:var(--muted);font-size:.85rem;padding-bottom:.4rem}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);
vertical-align:top;overflow-wrap:anywhere}
th{font-weight:600}
.ongoing{color:var(--down);font-weight:600}.now{color:var(--maint);font-weight:600}
.empty{color:var(--muted)}
footer{padding-top:1rem;padding-bottom:2rem}
footer p{margin:.3rem 0}
@media (max-width:40rem){.figures{grid-template-columns:1fr}
caption{display:block}
.site{padding:.85rem}
thead{position:absolute;left:-9999px}
table,tbody,tr,td{display:block;width:100%}
tr{border-bottom:1px solid var(--line);padding:.4rem 0}
td{border:0;padding:.1rem .6rem}
td::before{content:attr(data-label) ": ";color:var(--muted)}}
"""


def render_html(model: StatusModel) -> str:
    return "".join(_page(model))


def write_html(model: StatusModel, out: IO[bytes]) -> None:
    """``render_html(model).encode()`` written piece by piece into ``out`` (the page of
    10,000 sites is ~19 MB: its pieces, the joined text and the bytes were three copies)."""
    for piece in _page(model):
        out.write(piece.encode())


def render_html_bytes(model: StatusModel) -> bytes:
    out = io.BytesIO()
    write_html(model, out)
    return out.getvalue()


def _page(model: StatusModel) -> Iterator[str]:
    """The page in pieces: the head, one per site, the rest."""
    level, sentence = model.overall
    down = [site.site_id for site in model.sites if site.state == "down"]
    yield (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">\n"
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>{_e(model.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header>\n"
        f"<h1>{_e(model.title)}</h1>\n"
        f'<p class="overall {level}" role="status">{_e(sentence)}'
    )
    if down:
        shown = ", ".join(down[:10]) + (f" and {len(down) - 10} more" if len(down) > 10 else "")
        yield f' <span class="down-list">Down: {_e(shown)}</span>'
    yield (
        f'</p>\n<p class="meta">Updated {_time(model.generated_at)}. '
        "Times are UTC; the page is rebuilt every few minutes.</p>\n</header>\n<main>\n"
    )
    if model.maintenance:
        yield _maintenance(model.maintenance, model.generated_at)
    if not model.sites:
        yield '<h2>Sites</h2>\n<p class="empty">No site has reported a check yet.</p>\n'
    number = 0
    for name, sites in _groups(model.sites):
        yield f"<section>\n<h2>{_e(name)}</h2>\n"
        for site in sites:
            number += 1
            yield _site(site, number, model.generated_at)
        yield "</section>\n"
    yield _incidents(model.incidents, model.generated_at)
    yield _footer()


def _groups(sites: Sequence[SiteStatus]) -> list[tuple[str, list[SiteStatus]]]:
    """Sites grouped by their first tag (tag groups by name, untagged last)."""
    groups: dict[str, list[SiteStatus]] = {}
    for site in sites:
        groups.setdefault(site.tags[0] if site.tags else "", []).append(site)
    tagged = sorted(name for name in groups if name)
    ordered = [(name, groups[name]) for name in tagged]
    if "" in groups:
        ordered.append(("Other sites" if tagged else "Sites", groups[""]))
    return ordered


def _site(site: SiteStatus, number: int, now: datetime) -> str:
    icon, word = _STATE_TEXT.get(site.state, ("?", site.state))
    since = f" since {_time(site.since)}" if site.since else ""
    heading = f"s{number}"
    marked = f" {site.state}" if site.state in {"down", "maintenance"} else ""
    flapping = (
        '<span class="flapping">flapping: up and down repeatedly</span>' if site.flapping else ""
    )
    parts = [
        f'<article class="site{marked}" aria-labelledby="{heading}">\n<div class="head">'
        f'<h3 id="{heading}">{_e(site.site_id)}</h3>'
        f'<span class="state {_e(site.state)}"><span aria-hidden="true">{icon}</span> '
        f"{_e(word)}</span>"
        f'<span class="muted">{since}</span>{flapping}</div>\n'
        f'<p class="url muted">{_e(site.url)}'
    ]
    if len(site.tags) > 1:
        parts.append(f" &middot; tags: {_e(', '.join(site.tags))}")
    if site.certificate_expires_at is not None:
        parts.append(_certificate(site.certificate_expires_at, now))
    parts.append("</p>\n")
    parts.append(_bars(site.days))
    parts.append('<div class="figures">\n<dl class="uptime">')
    for name, _ in WINDOWS:
        label = name.replace("h", " h").replace("d", " days")
        parts.append(f"<div><dt>{label}</dt><dd>{_percent(site.uptime[name])}</dd></div>")
    parts.append("</dl>\n")
    parts.append(_chart(site, now))
    parts.append("</div>\n</article>\n")
    return "".join(parts)


def _day_class(day: DayStatus) -> tuple[str, str]:
    if day.checks == 0 and day.incident_minutes == 0:
        return "dn", "no data"
    for name, bound, text in _DAY_CLASSES:
        if day.incident_minutes <= bound:
            return name, text.lower()
    raise AssertionError("unreachable: the last bound is infinite")


def _bars(days: Sequence[DayStatus]) -> str:
    """One bar per day; runs of quiet days share a tooltip, incident days have their own.

    A run is one dashed horizontal line (dash = bar, gap = space between bars): a few bytes
    however long the run, which keeps 50 sites well under 200 KB.
    """
    shapes: list[str] = []
    incident_days: list[str] = []
    counts = {"dn": 0, "d0": 0}
    # (a day without incident minutes, most of them, is classed here without a call)
    keys = [
        _QUIET_KEYS[day.checks == 0] if day.incident_minutes == 0 else _run_key(day) for day in days
    ]
    start = 0
    for (cls, _), same in groupby(keys):
        length = len(list(same))
        run = days[start : start + length]
        first, last = run[0], run[-1]
        step = _BAR_W + _BAR_GAP
        path = f"M{start * step} {_BAR_H // 2}h{len(run) * step - _BAR_GAP}"
        if cls in counts:
            counts[cls] += len(run)
            text = "no data" if cls == "dn" else "no incidents"
            uptimes = [d.uptime for d in run if d.uptime is not None]
            if uptimes:
                low, high = _percent(min(uptimes)), _percent(max(uptimes))
                text += f", {low} up" if low == high else f", {low} to {high} up"
            title = f"{_span(first.date, last.date)}: {text}"
        else:
            title = (
                f"{_day(first.date)}: {_minutes(first.incident_minutes)} of incidents, "
                f"{_percent(first.uptime)} up"
            )
            incident_days.append(f"{_day(first.date)} ({_minutes(first.incident_minutes)})")
        shapes.append(f'<path class="{cls}" d="{path}"><title>{_e(title)}</title></path>')
        start += length
    label = (
        f"Last {DAYS} days: {counts['d0']} days without incidents, "
        f"{len(incident_days)} with incidents, {counts['dn']} without data."
    )
    if incident_days:
        label += " Latest incidents: " + ", ".join(incident_days[-5:]) + "."
    width = DAYS * (_BAR_W + _BAR_GAP) - _BAR_GAP
    return (
        f'<svg class="bars" viewBox="0 0 {width} {_BAR_H}" preserveAspectRatio="none" '
        f'role="img" aria-label="{_e(label)}">{"".join(shapes)}</svg>\n'
        f'<div class="axis" aria-hidden="true"><span>{DAYS} days ago</span>'
        "<span>today</span></div>\n"
    )


def _span(first: date, last: date) -> str:
    """4-12 Sep 2026, 29 Oct - 5 Nov 2026, or one day."""
    if first == last:
        return _day(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}\u2013{_day(last)}"
    if first.year == last.year:
        return f"{first.day} {first:%b} \u2013 {_day(last)}"
    return f"{_day(first)} \u2013 {_day(last)}"


_QUIET_KEYS = {True: ("dn", ""), False: ("d0", "")}  # by "no checks", as _run_key keys them


def _run_key(day: DayStatus) -> tuple[str, str]:
    cls, _ = _day_class(day)
    # quiet days join a run; each day with incidents stands alone
    return (cls, "") if cls in {"dn", "d0"} else (cls, day.date.isoformat())


def _chart(site: SiteStatus, now: datetime) -> str:
    """p50 and p95 per hour over the last 24 hours (a gap where an hour has no latency)."""
    if site.latency_p50_ms is None:
        return (
            '<figure class="chart"><figcaption>Response time (24 h): no responses'
            "</figcaption></figure>\n"
        )
    points = [h for h in site.hourly if h.p95_ms is not None]
    top = _nice_ceiling(max(h.p95_ms or 0.0 for h in points))
    first = (now - timedelta(hours=23)).replace(minute=0, second=0, microsecond=0)
    # each hour's place on the chart, for both lines
    indices = [round((h.hour - first).total_seconds() / 3600) for h in site.hourly]
    lines = "".join(
        f'<path class="{name}" d="{d}"/>'
        for name, d in (
            ("p95", _line(indices, [h.p95_ms for h in site.hourly], top)),
            ("p50", _line(indices, [h.p50_ms for h in site.hourly], top)),
        )
    )
    slowest = max(points, key=lambda h: h.p95_ms or 0.0)
    label = (
        f"Response time over the last 24 hours: median {_ms(site.latency_p50_ms)}, "
        f"95th percentile {_ms(site.latency_p95_ms)}; slowest hour "
        f"{slowest.hour:%H}:00 with p95 {_ms(slowest.p95_ms)}."
    )
    return (
        f'<figure class="chart"><svg viewBox="0 0 {_CHART_W} {_CHART_H}" '
        f'preserveAspectRatio="none" role="img" aria-label="{_e(label)}">{lines}</svg>'
        f"<figcaption>Response time, 24 h (scale 0\u2013{_ms(top)}):"
        f'<span class="key p50" aria-hidden="true"></span>p50 {_ms(site.latency_p50_ms)}'
        f'<span class="key p95" aria-hidden="true"></span>p95 {_ms(site.latency_p95_ms)}'
        "</figcaption></figure>\n"
    )


def _line(indices: Iterable[int], values: Iterable[float | None], top: float) -> str:
    """An SVG path through the hours (their indices on the chart) that have a value; a lone
    hour is a short dash."""
    runs: list[list[tuple[int, int]]] = []
    previous = -2
    for index, value in zip(indices, values, strict=True):
        if value is None or not 0 <= index <= 23:
            continue
        point = (index * _CHART_STEP, round(_CHART_H - 2 - (_CHART_H - 4) * min(value / top, 1.0)))
        if index != previous + 1:
            runs.append([])
        runs[-1].append(point)
        previous = index
    commands = []
    for run in runs:
        (x, y), rest = run[0], run[1:]
        # after one L, further pairs need no letter of their own
        line = " ".join(f"{px} {py}" for px, py in rest)
        commands.append(f"M{x} {y}" + (f"L{line}" if line else "h1"))
    return "".join(commands)


def _nice_ceiling(value: float) -> float:
    for bound in (10, 20, 50, 100, 200, 300, 500, 1000, 2000, 3000, 5000, 10000, 20000, 30000):
        if value <= bound:
            return float(bound)
    return float(max(value, 60000.0))


def _certificate(expires: datetime, now: datetime) -> str:
    days = (expires - now).total_seconds() / 86400
    warn = days < CERT_WARNING_DAYS
    when = f"in {int(days)} days" if days >= 0 else f"{int(-days)} days ago"
    verb = "expires" if days >= 0 else "expired"
    cls = ' class="warn"' if warn else ""
    return f" &middot; <span{cls}>TLS certificate {verb} {_time(expires)} ({when})</span>"


def _incidents(incidents: Sequence[Incident], now: datetime) -> str:
    parts = ["<section>\n<h2>Recent incidents</h2>\n"]
    if not incidents:
        parts.append(f'<p class="empty">No incidents in the last {DAYS} days.</p>\n</section>\n')
        return "".join(parts)
    parts.append(
        "<table>\n<caption>Newest first; an incident opens after consecutive failed checks "
        "and ends at the first check of the passing streak that resolves it.</caption>\n"
        '<thead><tr><th scope="col">Site</th><th scope="col">Started</th>'
        '<th scope="col">Ended</th><th scope="col">Duration</th>'
        '<th scope="col">Reason</th></tr></thead>\n<tbody>\n'
    )
    for incident in incidents:
        ended = (
            _time(incident.resolved_at)
            if incident.resolved_at
            else '<span class="ongoing">ongoing</span>'
        )
        parts.append(
            f'<tr><td data-label="Site">{_e(incident.site_id)}</td>'
            f'<td data-label="Started">{_time(incident.opened_at)}</td>'
            f'<td data-label="Ended">{ended}</td>'
            f'<td data-label="Duration">{_duration(incident.duration(now))}</td>'
            f'<td data-label="Reason">{_e(_reason(incident))}</td></tr>\n'
        )
    parts.append("</tbody>\n</table>\n</section>\n")
    return "".join(parts)


def _reason(incident: Incident) -> str:
    text = incident.error or "failure"
    if incident.status_code is not None:
        text += f" (HTTP {incident.status_code})"
    if incident.error_detail:
        detail = incident.error_detail
        if len(detail) > DETAIL_CHARS:
            detail = detail[: DETAIL_CHARS - 1] + "\u2026"
        text += f": {detail}"
    return text


def _maintenance(windows: Sequence[MaintenanceWindow], now: datetime) -> str:
    parts = [
        "<section>\n<h2>Maintenance</h2>\n<table>\n"
        "<caption>Current and upcoming windows: no incident opens for a covered site."
        "</caption>\n"
        '<thead><tr><th scope="col">When</th><th scope="col">Sites</th>'
        '<th scope="col">Starts</th><th scope="col">Ends</th>'
        '<th scope="col">Reason</th></tr></thead>\n<tbody>\n'
    ]
    for window in windows:
        when = '<span class="now">now</span>' if window.current(now) else "upcoming"
        covered = []
        if window.site_ids:
            covered.append(", ".join(window.site_ids))
        if window.tags:
            covered.append("tagged " + ", ".join(window.tags))
        sites = "; ".join(covered) or "all sites"
        parts.append(
            f'<tr><td data-label="When">{when}</td><td data-label="Sites">{_e(sites)}</td>'
            f'<td data-label="Starts">{_time(window.starts_at)}</td>'
            f'<td data-label="Ends">{_time(window.ends_at)}</td>'
            f'<td data-label="Reason">{_e(window.reason or "-")}</td></tr>\n'
        )
    parts.append("</tbody>\n</table>\n</section>\n")
    return "".join(parts)


def _footer() -> str:
    keys = "".join(
        f'<span class="key {cls}" aria-hidden="true"></span>{text}' for cls, _, text in _DAY_CLASSES
    )
    return (
        "</main>\n<footer>\n"
        f'<p class="muted">Daily bars, coloured by minutes of incidents:{keys}'
        '<span class="key dn" aria-hidden="true"></span>No data.</p>\n'
        '<p class="muted">Uptime is the share of checks that passed. '
        'The same figures as JSON: <a href="status.json">status.json</a>.</p>\n'
        "</footer>\n</body>\n</html>\n"
    )


# -- text ---------------------------------------------------------------------------------


def _e(text: str) -> str:
    """Escaped for HTML text and attributes; control characters replaced."""
    return html.escape(text.translate(_CONTROL), quote=True)


def _time(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f'<time datetime="{utc:%Y-%m-%dT%H:%M:%SZ}">{utc:%Y-%m-%d %H:%M} UTC</time>'


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def _percent(value: float | None) -> str:
    if value is None:
        return "no data"
    if value >= 100.0:
        return "100%"
    return f"{min(value, 99.99):.2f}%"  # never rounds a failure up to 100%


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _minutes(minutes: float) -> str:
    return _duration(timedelta(minutes=minutes))


def _duration(length: timedelta) -> str:
    minutes = int(length.total_seconds() // 60)
    if minutes < 1:
        return "under 1 min"
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"
